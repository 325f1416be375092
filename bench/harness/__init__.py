"""What the benchmark scripts share; each script in ``bench/`` describes only its scenario.

- ``acmeflow_api``: every name of acmeflow the benchmarks use, imported in that one module;
- ``stack``: the stack a benchmark runs on, its processes, and the script's common options;
- ``processes``: CPU seconds, CPU waits and resident memory of processes, from ``/proc``;
- ``server_counters``: kube-apiserver's and Temporal's counters, scraped before and after;
- ``histories``: where a workflow's time went, read from its Temporal history;
- ``kube``: Kubernetes clients, a benchmark's namespace, creating and watching objects;
- ``kube_run``: one Kubernetes run (N objects created at once, watched until final);
- ``figures``: percentiles and the printed figures;
- ``fault_*``: the faults-at-load scenario (``fault_scenario``) that ``bench/faults.py`` and
  ``tests/k8s/test_faults_at_load.py`` share: its processes, plan, kill schedule, findings
  and histories; ``suite_helpers``: the test suite's ACME proxy and certificate check;
- the cert-manager comparison (``bench/vs_cert_manager.py``): ``cert_manager_kinds`` (its
  Certificate and Issuer), ``comparison_processes`` (cert-manager and acmeflow on one stack,
  grouped) and ``event_timeline`` (where each Certificate's time goes, from its Events).

The scripts import it as ``harness`` (``bench/`` is their path, as ``python bench/x.py``
runs them).
"""
