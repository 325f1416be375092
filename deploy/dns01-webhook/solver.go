package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
)

// solverName is the name an Issuer's dns01.webhook.solverName gives.
const solverName = "bind-rfc2136"

const txtTTL = 60

// solverConfig is the Issuer's dns01.webhook.config: where to send updates and which
// Secret holds the TSIG key. No secret value travels in it.
type solverConfig struct {
	Nameserver          string    `json:"nameserver"`
	TSIGKeyName         string    `json:"tsigKeyName"`
	TSIGAlgorithm       string    `json:"tsigAlgorithm"`
	TSIGSecretSecretRef secretRef `json:"tsigSecretSecretRef"`
	// Refuse, when set, makes the solver fail with this message (test infrastructure:
	// a provider refusing the request).
	Refuse string `json:"refuse"`
}

type secretRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

type rfc2136Solver struct {
	client     kubernetes.Interface
	requestLog string
	logMu      sync.Mutex
}

func newSolver(requestLog string) *rfc2136Solver {
	return &rfc2136Solver{requestLog: requestLog}
}

func (s *rfc2136Solver) Name() string { return solverName }

func (s *rfc2136Solver) Initialize(kubeClientConfig *restclient.Config, _ <-chan struct{}) error {
	// client-go's default of 5 reads a second would queue a burst of challenges behind
	// the TSIG Secret reads; a webhook serving a cluster's renewals needs more.
	config := restclient.CopyConfig(kubeClientConfig)
	config.QPS, config.Burst = 100, 200
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	s.client = client
	return nil
}

func (s *rfc2136Solver) Present(ch *whapi.ChallengeRequest) error {
	s.logRequest(ch)
	return s.update(ch, func(msg *dns.Msg, rr dns.RR) { msg.Insert([]dns.RR{rr}) })
}

func (s *rfc2136Solver) CleanUp(ch *whapi.ChallengeRequest) error {
	s.logRequest(ch)
	return s.update(ch, func(msg *dns.Msg, rr dns.RR) { msg.Remove([]dns.RR{rr}) })
}

// logRequest appends the request as one JSON line, so tests can see what a webhook is sent.
func (s *rfc2136Solver) logRequest(ch *whapi.ChallengeRequest) {
	if s.requestLog == "" {
		return
	}
	line, err := json.Marshal(ch)
	if err != nil {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	file, err := os.OpenFile(s.requestLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer file.Close()
	_, _ = file.Write(append(line, '\n'))
}

func loadConfig(ch *whapi.ChallengeRequest) (solverConfig, error) {
	var config solverConfig
	if ch.Config == nil {
		return config, errors.New("no config: nameserver, tsigKeyName and tsigSecretSecretRef are required")
	}
	if err := json.Unmarshal(ch.Config.Raw, &config); err != nil {
		return config, fmt.Errorf("config is not valid JSON for this solver: %w", err)
	}
	if config.Nameserver == "" {
		return config, errors.New("config.nameserver is required")
	}
	return config, nil
}

// update adds (Present) or removes (CleanUp) only this challenge's value at ResolvedFQDN
// in ResolvedZone; other values at the same name (a wildcard beside its apex) stay.
func (s *rfc2136Solver) update(ch *whapi.ChallengeRequest, change func(*dns.Msg, dns.RR)) error {
	config, err := loadConfig(ch)
	if err != nil {
		return err
	}
	if config.Refuse != "" {
		return errors.New(config.Refuse)
	}
	if ch.ResolvedFQDN == "" || ch.ResolvedZone == "" {
		return errors.New("request has no resolvedFQDN or resolvedZone")
	}
	rr := &dns.TXT{
		Hdr: dns.RR_Header{Name: ch.ResolvedFQDN, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: txtTTL},
		Txt: []string{ch.Key},
	}
	msg := new(dns.Msg)
	msg.SetUpdate(ch.ResolvedZone)
	change(msg, rr)
	client := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	if config.TSIGKeyName != "" {
		secret, err := s.tsigSecret(ch.ResourceNamespace, config.TSIGSecretSecretRef)
		if err != nil {
			return err
		}
		keyName := dns.Fqdn(config.TSIGKeyName)
		algorithm, err := tsigAlgorithm(config.TSIGAlgorithm)
		if err != nil {
			return err
		}
		client.TsigSecret = map[string]string{keyName: secret}
		msg.SetTsig(keyName, algorithm, 300, time.Now().Unix())
	}
	reply, _, err := client.Exchange(msg, config.Nameserver)
	if err != nil {
		return fmt.Errorf("update of %s at %s: %w", ch.ResolvedFQDN, config.Nameserver, err)
	}
	if reply.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("update of %s at %s: %s", ch.ResolvedFQDN, config.Nameserver, dns.RcodeToString[reply.Rcode])
	}
	return nil
}

func (s *rfc2136Solver) tsigSecret(namespace string, ref secretRef) (string, error) {
	if ref.Name == "" || ref.Key == "" {
		return "", errors.New("config.tsigSecretSecretRef needs name and key")
	}
	if s.client == nil {
		return "", errors.New("solver not initialized: no Kubernetes client")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	secret, err := s.client.CoreV1().Secrets(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading Secret %s/%s: %w", namespace, ref.Name, err)
	}
	value, ok := secret.Data[ref.Key]
	if !ok {
		return "", fmt.Errorf("Secret %s/%s has no key %q", namespace, ref.Name, ref.Key)
	}
	return strings.TrimSpace(string(value)), nil
}

// tsigAlgorithm accepts cert-manager's spelling (HMACSHA256) and BIND's (hmac-sha256).
func tsigAlgorithm(name string) (string, error) {
	normalized := strings.NewReplacer("-", "", "_", "").Replace(strings.ToUpper(name))
	switch normalized {
	case "", "HMACSHA256":
		return dns.HmacSHA256, nil
	case "HMACSHA1":
		return dns.HmacSHA1, nil
	case "HMACSHA224":
		return dns.HmacSHA224, nil
	case "HMACSHA384":
		return dns.HmacSHA384, nil
	case "HMACSHA512":
		return dns.HmacSHA512, nil
	}
	return "", fmt.Errorf("unsupported TSIG algorithm %q", name)
}
