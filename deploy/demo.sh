#!/usr/bin/env bash
# The main job on the embedded stack: issue a certificate standalone, then the Kubernetes
# way (an Issuer and an Order applied with kubectl), and show what kubectl describe says.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${DEMO_OUT:-$PWD/certs}

acmeflow dev up --detach
eval "$(acmeflow dev env)"

echo "== acmeflow issue: one OrderWorkflow, no Kubernetes"
acmeflow --log-level WARNING issue test1.example.com test2.example.com --out "$out"
openssl x509 -in "$out/tls.crt" -noout -subject -issuer -ext subjectAltName

echo "== kubectl: an Issuer and an Order in namespace demo"
kubectl create namespace demo --dry-run=client -o yaml | kubectl apply -f -
ca_bundle=$(base64 -w0 "$ACMEFLOW_ACME_CA_BUNDLE")
sed -e "s|@SERVER@|$ACMEFLOW_ACME_SERVER|" -e "s|@CA_BUNDLE@|$ca_bundle|" \
  "$here/examples/issuer.yaml" | kubectl apply -n demo -f -

order=example-com-$(date +%s)
key=$(mktemp)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$key" \
  -subj "/" -addext "subjectAltName=DNS:test1.example.com,DNS:test2.example.com" \
  2>/dev/null > "$key.csr"
rm -f "$key"
kubectl apply -n demo -f - <<YAML
apiVersion: acmeflow.io/v1alpha1
kind: Order
metadata:
  name: $order
spec:
  issuerRef: {name: pebble}
  dnsNames: [test1.example.com, test2.example.com]
  request: |
$(sed 's/^/    /' "$key.csr")
YAML
rm -f "$key.csr"
kubectl wait -n demo --for=jsonpath='{.status.state}'=valid "order/$order" --timeout=120s
kubectl get -n demo orders,challenges -o wide
echo "== kubectl describe order $order (its status tail and events)"
kubectl describe -n demo order "$order" | sed -n '/^  Reason:/,$p'
echo "== kubectl describe challenge $order-0"
kubectl describe -n demo challenge "$order-0" | sed -n '/^Status:/,$p'
echo "== the same order in Temporal"
temporal workflow describe -w "order/demo/$order" | sed -n '1,9p'
