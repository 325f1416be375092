#!/usr/bin/env bash
# The user's own path on the embedded stack: an Issuer and a Certificate applied with
# kubectl, the Certificate Ready with its Secret, what kubectl describe says about the
# Certificate, its Order and its Challenges, and the same Certificate in Temporal.
# First, for a taste without Kubernetes, one certificate straight from `acmeflow issue`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${DEMO_OUT:-$PWD/certs}
ns=demo
certificate=web

acmeflow dev up --detach
eval "$(acmeflow dev env)"

echo "== acmeflow issue: one OrderWorkflow, no Kubernetes (key and certificate in $out)"
acmeflow --log-level WARNING issue test3.example.com test4.example.com --out "$out"
openssl x509 -in "$out/tls.crt" -noout -subject -issuer -ext subjectAltName

echo "== kubectl apply: an Issuer (the stack's Pebble) and a Certificate in namespace $ns"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
ca_bundle=$(base64 -w0 "$ACMEFLOW_ACME_CA_BUNDLE")
sed -e "s|@SERVER@|$ACMEFLOW_ACME_SERVER|" -e "s|@CA_BUNDLE@|$ca_bundle|" \
  "$here/examples/issuer.yaml" | kubectl apply -n "$ns" -f -
cat "$here/examples/certificate.yaml"
kubectl apply -n "$ns" -f "$here/examples/certificate.yaml"
kubectl wait -n "$ns" --for=condition=Ready "certificate/$certificate" --timeout=180s
kubectl get -n "$ns" certificates,orders -o wide

echo "== the Secret $certificate-tls: tls.crt, read by openssl"
kubectl get secret -n "$ns" "$certificate-tls" -o jsonpath='{.data.tls\.crt}' | base64 -d |
  openssl x509 -noout -subject -issuer -dates -ext subjectAltName

echo "== kubectl describe certificate $certificate (its status and events)"
kubectl describe -n "$ns" certificate "$certificate" | sed -n '/^Status:/,$p'

# The Certificate's newest Order: the one its last issuance created.
order=$(kubectl get orders -n "$ns" -l "acmeflow.io/certificate=$certificate" \
  --sort-by=.metadata.creationTimestamp -o jsonpath='{.items[-1:].metadata.name}')
echo "== kubectl describe order $order (its status tail and events)"
kubectl describe -n "$ns" order "$order" | sed -n '/^  Reason:/,$p'

# A valid Challenge is deleted once it is cleaned up (as cert-manager deletes them), so
# by now this Order's Challenges are gone; their Events stay, and so does a failed one.
echo "== the Challenges of order $order (told by their Events)"
for challenge in $(kubectl get challenges -n "$ns" -l "acmeflow.io/order=$order" -o name); do
  kubectl describe -n "$ns" "$challenge" | sed -n '/^Status:/,$p'
done
kubectl get events -n "$ns" --field-selector involvedObject.kind=Challenge \
  --sort-by=.metadata.creationTimestamp \
  -o custom-columns=CHALLENGE:.involvedObject.name,REASON:.reason,MESSAGE:.message |
  awk -v order="$order" 'NR == 1 || index($1, order "-") == 1'

echo "== acmeflow status certificate $certificate: all of the above on one screen"
acmeflow status certificate "$certificate" -n "$ns"

echo "== the same Certificate in Temporal"
temporal workflow describe -w "certificate/$ns/$certificate" | sed -n '1,9p'
echo "Temporal UI: $ACMEFLOW_TEMPORAL_UI/namespaces/$TEMPORAL_NAMESPACE/workflows/certificate%2F$ns%2F$certificate"
echo "its Order:   $ACMEFLOW_TEMPORAL_UI/namespaces/$TEMPORAL_NAMESPACE/workflows/order%2F$ns%2F$order"
