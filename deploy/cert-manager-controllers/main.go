// Command cert-manager-controllers runs cert-manager's real controllers, taken from the
// packages of its root module github.com/cert-manager/cert-manager, inside acmeflow's dev
// stack. cert-manager's own cmd/controller module is not served by the Go module proxy;
// its root module is, and every controller registers itself with pkg/controller's
// registry from an init function. This program imports the packages it wants, builds a
// controller.ContextFactory the way cert-manager's controller does, starts the chosen
// controllers and the shared informer factories, and runs until SIGINT/SIGTERM.
//
// No webhook and no cainjector. With --leader-elect, several processes against one API
// server (test sessions sharing a dev stack) take turns through a Lease, as cert-manager's
// replicas do; only the holder runs controllers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	utilfeature "github.com/cert-manager/cert-manager/pkg/util/feature"

	// Controllers: each package's init registers it with controller.Register.
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmechallenges"
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmeorders"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/gateways"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/ingresses"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/acme"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"

	// Issuer kinds the issuers/clusterissuers controllers can set up (issuer.RegisterIssuer).
	_ "github.com/cert-manager/cert-manager/pkg/issuer/acme"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// defaultControllers is what acmeflow's dev stack runs unless told otherwise: cert-manager's
// Certificate lifecycle, the approver, the shims, its own issuers (ACME, CA, selfSigned)
// with their CertificateRequest signers, and the ACME orders/challenges controllers.
var defaultControllers = []string{
	"issuers", "clusterissuers",
	"certificates-issuing", "certificates-key-manager", "certificates-trigger",
	"certificates-readiness", "certificates-request-manager", "certificates-revision-manager",
	"certificaterequests-approver",
	"certificaterequests-issuer-selfsigned", "certificaterequests-issuer-ca",
	"certificaterequests-issuer-acme",
	"orders", "challenges",
	"ingress-shim", "gateway-shim",
}

type options struct {
	kubeconfig, master, namespace, clusterResourceNamespace  string
	controllers                                              string
	workers                                                  int
	qps                                                      float64
	burst                                                    int
	enableGatewayAPI                                         bool
	featureGates                                             string
	dns01Nameservers                                         string
	dns01NameserversOnly                                     bool
	dns01CheckRetryPeriod                                    time.Duration
	http01SolverImage                                        string
	http01SolverNameservers                                  string
	maxConcurrentChallenges                                  int
	minBackoff, maxBackoff                                   time.Duration
	enableOwnerRef                                           bool
	defaultIssuerName, defaultIssuerKind, defaultIssuerGroup string
	healthAddr                                               string
	listControllers                                          bool
	leaderElect                                              bool
	leaderElectionNamespace                                  string
}

func main() {
	o := options{}
	klog.InitFlags(flag.CommandLine)
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file of the API server")
	flag.StringVar(&o.master, "master", "", "API server URL (overrides the kubeconfig's)")
	flag.StringVar(&o.namespace, "namespace", "", "only watch this namespace (default: all)")
	flag.StringVar(&o.clusterResourceNamespace, "cluster-resource-namespace", "cert-manager",
		"namespace holding Secrets referenced by ClusterIssuers")
	flag.StringVar(&o.controllers, "controllers", strings.Join(defaultControllers, ","),
		"comma-separated controllers to run; '*' for every registered one")
	flag.IntVar(&o.workers, "workers", 5, "workers per controller")
	flag.Float64Var(&o.qps, "kube-api-qps", 20, "client QPS when the server lacks APF")
	flag.IntVar(&o.burst, "kube-api-burst", 50, "client burst when the server lacks APF")
	flag.BoolVar(&o.enableGatewayAPI, "enable-gateway-api", false,
		"watch gateway.networking.k8s.io (needs the Gateway API CRDs; gateway-shim only runs then)")
	flag.StringVar(&o.featureGates, "feature-gates", "", "cert-manager feature gates, A=true,B=false")
	flag.StringVar(&o.dns01Nameservers, "dns01-recursive-nameservers", "",
		"host:port list used for DNS-01 self checks")
	flag.BoolVar(&o.dns01NameserversOnly, "dns01-recursive-nameservers-only", false,
		"only ask the recursive nameservers, never the authoritative ones")
	flag.DurationVar(&o.dns01CheckRetryPeriod, "dns01-check-retry-period", 10*time.Second,
		"wait between DNS-01 self checks")
	flag.StringVar(&o.http01SolverImage, "acme-http01-solver-image",
		"quay.io/jetstack/cert-manager-acmesolver:v1.21.2", "HTTP-01 solver pod image")
	flag.StringVar(&o.http01SolverNameservers, "acme-http01-solver-nameservers", "",
		"host:port list used for HTTP-01 self checks")
	flag.IntVar(&o.maxConcurrentChallenges, "max-concurrent-challenges", 60,
		"challenges the scheduler lets be processing at once")
	flag.DurationVar(&o.minBackoff, "certificate-request-minimum-backoff-duration", time.Hour,
		"first back-off after a failed issuance")
	flag.DurationVar(&o.maxBackoff, "certificate-request-maximum-backoff-duration", 32*time.Hour,
		"longest back-off after failed issuances")
	flag.BoolVar(&o.enableOwnerRef, "enable-certificate-owner-ref", false,
		"make Certificates own their Secrets")
	flag.StringVar(&o.defaultIssuerName, "default-issuer-name", "", "ingress-shim default issuer")
	flag.StringVar(&o.defaultIssuerKind, "default-issuer-kind", "Issuer", "ingress-shim default issuer kind")
	flag.StringVar(&o.defaultIssuerGroup, "default-issuer-group", "cert-manager.io", "ingress-shim default issuer group")
	flag.StringVar(&o.healthAddr, "healthz-address", "", "serve /healthz (200 once informers synced) here, e.g. 127.0.0.1:9403")
	flag.BoolVar(&o.listControllers, "list-controllers", false, "print every registered controller and exit")
	flag.BoolVar(&o.leaderElect, "leader-elect", false, "run controllers only while holding the Lease "+leaseName)
	flag.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "kube-system", "namespace of that Lease")
	flag.Parse()

	if o.listControllers {
		names := make([]string, 0, len(controller.Known()))
		for name := range controller.Known() {
			names = append(names, name)
		}
		sort.Strings(names)
		fmt.Println(strings.Join(names, "\n"))
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager-controllers:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// leaseName is the Lease cert-manager's own controller elects its leader with.
const leaseName = "cert-manager-controller"

// health answers /healthz from whatever check the process's current phase installs.
type health struct {
	mu    sync.Mutex
	check func() error
}

func (h *health) set(check func() error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.check = check
}

func (h *health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	check := h.check
	h.mu.Unlock()
	if check == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	if err := check(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func run(o options) error {
	if o.featureGates != "" {
		if err := utilfeature.DefaultMutableFeatureGate.Set(o.featureGates); err != nil {
			return fmt.Errorf("--feature-gates: %w", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, klog.Background(), "cert-manager-controllers")

	status := &health{}
	if o.healthAddr != "" {
		ln, err := net.Listen("tcp", o.healthAddr)
		if err != nil {
			return fmt.Errorf("--healthz-address: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/healthz", status)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	if !o.leaderElect {
		return runControllers(ctx, o, status)
	}
	return runElected(ctx, o, status)
}

// runElected runs the controllers while this process holds the Lease. A standby answers
// /healthz with 200 while another process holds it, since the cluster is then served.
func runElected(parent context.Context, o options, status *health) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	log := logf.FromContext(ctx)
	restConfig, err := clientcmd.BuildConfigFromFlags(o.master, o.kubeconfig)
	if err != nil {
		return fmt.Errorf("leader election client: %w", err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("leader election client: %w", err)
	}
	host, _ := os.Hostname()
	identity := fmt.Sprintf("%s_%d", host, os.Getpid())
	var (
		done   = make(chan error, 1)
		leader atomic.Bool
	)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Name: leaseName, Namespace: o.leaderElectionNamespace},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
		},
		// cert-manager's own defaults: a test that pauses the process for seconds keeps it.
		LeaseDuration:   60 * time.Second,
		RenewDeadline:   40 * time.Second,
		RetryPeriod:     15 * time.Second,
		ReleaseOnCancel: true,
		Name:            "cert-manager-controllers",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leading context.Context) {
				leader.Store(true)
				log.Info("leading", "identity", identity)
				done <- runControllers(leading, o, status)
				cancel() // controllers gone (lease lost or a controller failed): stop renewing
			},
			OnStoppedLeading: func() { log.Info("stopped leading", "identity", identity) },
			OnNewLeader:      func(holder string) { log.Info("leader", "identity", holder) },
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	status.set(func() error { return heldByAnother(ctx, client, o.leaderElectionNamespace, identity) })
	elector.Run(ctx)
	if !leader.Load() {
		return nil
	}
	if err := <-done; err != nil {
		return err
	}
	if parent.Err() == nil {
		return errors.New("lost the lease")
	}
	return nil
}

// heldByAnother is nil while another process holds a Lease renewed within its duration:
// a standby then counts as healthy, but not behind the stale Lease of a killed process.
func heldByAnother(ctx context.Context, client kubernetes.Interface, namespace, identity string) error {
	lease, err := client.CoordinationV1().Leases(namespace).Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("waiting for the lease: %w", err)
	}
	spec := lease.Spec
	if spec.HolderIdentity == nil || *spec.HolderIdentity == identity || spec.RenewTime == nil || spec.LeaseDurationSeconds == nil {
		return errors.New("waiting for the lease")
	}
	if time.Since(spec.RenewTime.Time) > time.Duration(*spec.LeaseDurationSeconds)*time.Second {
		return fmt.Errorf("waiting for the expired lease of %s", *spec.HolderIdentity)
	}
	return nil
}

// runControllers starts the chosen controllers and runs them until ctx ends.
func runControllers(ctx context.Context, o options, status *health) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	log := logf.FromContext(ctx)

	quantity := resource.MustParse
	opts := controller.ContextOptions{
		APIServerHost:      o.master,
		Kubeconfig:         o.kubeconfig,
		KubernetesAPIQPS:   float32(o.qps),
		KubernetesAPIBurst: o.burst,
		Namespace:          o.namespace,
		IssuerOptions: controller.IssuerOptions{
			ClusterResourceNamespace: o.clusterResourceNamespace,
		},
		ACMEOptions: controller.ACMEOptions{
			HTTP01SolverImage:                 o.http01SolverImage,
			HTTP01SolverResourceRequestCPU:    quantity("10m"),
			HTTP01SolverResourceRequestMemory: quantity("64Mi"),
			HTTP01SolverResourceLimitsCPU:     quantity("100m"),
			HTTP01SolverResourceLimitsMemory:  quantity("64Mi"),
			ACMEHTTP01SolverRunAsNonRoot:      true,
			HTTP01SolverNameservers:           splitList(o.http01SolverNameservers),
			DNS01CheckAuthoritative:           !o.dns01NameserversOnly,
			DNS01Nameservers:                  splitList(o.dns01Nameservers),
			DNS01CheckRetryPeriod:             o.dns01CheckRetryPeriod,
		},
		IngressShimOptions: controller.IngressShimOptions{
			DefaultIssuerName:                 o.defaultIssuerName,
			DefaultIssuerKind:                 o.defaultIssuerKind,
			DefaultIssuerGroup:                o.defaultIssuerGroup,
			DefaultAutoCertificateAnnotations: []string{"kubernetes.io/tls-acme"},
			GatewayAPIExtraProtocols:          sets.New[string](),
		},
		CertificateOptions: controller.CertificateOptions{
			EnableOwnerRef:                           o.enableOwnerRef,
			CertificateRequestMinimumBackoffDuration: o.minBackoff,
			CertificateRequestMaximumBackoffDuration: o.maxBackoff,
		},
		SchedulerOptions: controller.SchedulerOptions{MaxConcurrentChallenges: o.maxConcurrentChallenges},
		ConfigOptions:    controller.ConfigOptions{EnableGatewayAPI: o.enableGatewayAPI},
	}
	if len(opts.DNS01Nameservers) == 0 {
		opts.DNS01Nameservers = nil
	}

	factory, err := controller.NewContextFactory(ctx, opts)
	if err != nil {
		return fmt.Errorf("building controller context: %w", err)
	}
	shared, err := factory.Build()
	if err != nil {
		return fmt.Errorf("building controller context: %w", err)
	}

	wanted := splitList(o.controllers)
	if len(wanted) == 1 && wanted[0] == "*" {
		wanted = wanted[:0]
		for name := range controller.Known() {
			wanted = append(wanted, name)
		}
		sort.Strings(wanted)
	}
	type started struct {
		name string
		impl controller.Interface
	}
	var ctrls []started
	for _, name := range wanted {
		construct, ok := controller.Known()[name]
		if !ok {
			return fmt.Errorf("unknown controller %q (see --list-controllers)", name)
		}
		if name == "gateway-shim" && !(o.enableGatewayAPI && shared.GatewaySolverEnabled) {
			log.Info("skipping gateway-shim: --enable-gateway-api is off or the Gateway API CRDs are missing")
			continue
		}
		if name == "clusterissuers" && o.namespace != "" {
			log.Info("skipping clusterissuers: scoped to one namespace")
			continue
		}
		impl, err := construct(factory)
		if err != nil {
			return fmt.Errorf("constructing controller %s: %w", name, err)
		}
		ctrls = append(ctrls, started{name, impl})
	}

	// Informers are shared by every Context the factory builds; start them once,
	// after every controller has asked for the informers it needs.
	shared.SharedInformerFactory.Start(ctx.Done())
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	if o.enableGatewayAPI && shared.GatewaySolverEnabled {
		shared.GWShared.Start(ctx.Done())
	}

	status.set(func() error {
		wait, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		for _, ok := range shared.SharedInformerFactory.WaitForCacheSync(wait.Done()) {
			if !ok {
				return errors.New("informers not synced")
			}
		}
		return nil
	})

	var wg sync.WaitGroup
	errs := make(chan error, len(ctrls))
	for _, c := range ctrls {
		wg.Add(1)
		go func(c started) {
			defer wg.Done()
			log.Info("starting controller", "controller", c.name)
			if err := c.impl.Run(o.workers, ctx); err != nil {
				errs <- fmt.Errorf("controller %s: %w", c.name, err)
				stop()
			}
		}(c)
	}
	names := make([]string, len(ctrls))
	for i, c := range ctrls {
		names[i] = c.name
	}
	log.Info("controllers running", "controllers", strings.Join(names, ","))
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	return nil
}
