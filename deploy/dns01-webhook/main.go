// Command dns01-webhook is a cert-manager DNS-01 webhook built on cert-manager's own
// webhook library (github.com/cert-manager/cert-manager/pkg/acme/webhook), so acmeflow's
// webhook path is tested against the server every third-party webhook runs. Its solver
// writes the challenge's TXT value into an authoritative server by TSIG-signed RFC 2136
// update, the TSIG secret read from the Kubernetes Secret its config names, in the
// request's resourceNamespace, as real webhooks read their API tokens.
//
// Test infrastructure, not a product: it logs every request it receives as one JSON line
// to the file named by ACMEFLOW_DNS01_WEBHOOK_REQUEST_LOG (when set), and a config with
// "refuse": "<message>" makes Present and CleanUp fail with that message, the way a
// provider that rejects a token answers, so tests can see a webhook's failure reach the
// Challenge.
package main

import (
	"os"

	"github.com/cert-manager/cert-manager/pkg/acme/webhook/cmd"
)

// GroupName is the API group the solver serves; override with GROUP_NAME, as
// cert-manager's example webhook does.
const defaultGroupName = "acme.dns01-webhook.acmeflow.test"

func main() {
	groupName := os.Getenv("GROUP_NAME")
	if groupName == "" {
		groupName = defaultGroupName
	}
	cmd.RunWebhookServer(groupName, newSolver(os.Getenv("ACMEFLOW_DNS01_WEBHOOK_REQUEST_LOG")))
}
