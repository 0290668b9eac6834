#!/usr/bin/env bash
# `make demo`: the operator against a real API server and the API Gateway emulator, in one
# command. It leaves everything running and prints how to look around and how to stop
# (`make demo-down`). DEMO_USE_EXISTING_CLUSTER=1 uses the cluster of KUBECONFIG instead of
# starting kube-apiserver (the emulator still starts locally).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STATE=target/demo
mkdir -p "$STATE"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building the operator"
cargo build --quiet

say "starting the test environment"
if [ "${DEMO_USE_EXISTING_CLUSTER:-}" = 1 ]; then
    [ -n "${KUBECONFIG:-}" ] || { echo "DEMO_USE_EXISTING_CLUSTER=1 needs KUBECONFIG" >&2; exit 1; }
    TESTENV_USE_EXISTING_CLUSTER=1 hack/testenv-up.sh
else
    hack/testenv-up.sh
fi
# shellcheck disable=SC1091
. target/testenv/env.sh
python="$(hack/emulator/setup-venv.sh)"

say "installing the CRD"
kubectl apply --server-side -f crds/
kubectl wait --for=condition=Established --timeout=60s -f crds/

say "creating the PetStore REST API, /pets, POST and its integration in the emulator"
"$python" - <<'PY'
import os, boto3
aws = boto3.client("apigateway", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ["AWS_REGION"])
existing = [a for a in aws.get_rest_apis(limit=500)["items"] if a["name"] == "PetStore"]
api = existing[0] if existing else aws.create_rest_api(name="PetStore")
resources = aws.get_resources(restApiId=api["id"], limit=500)["items"]
root = next(r for r in resources if r["path"] == "/")
pets = next((r for r in resources if r["path"] == "/pets"), None) or aws.create_resource(restApiId=api["id"], parentId=root["id"], pathPart="pets")
try:
    aws.put_method(restApiId=api["id"], resourceId=pets["id"], httpMethod="POST", authorizationType="NONE")
except aws.exceptions.ConflictException:
    pass
aws.put_integration(restApiId=api["id"], resourceId=pets["id"], httpMethod="POST", type="HTTP_PROXY",
                    integrationHttpMethod="GET", uri="https://old-backend.example.com/pets")
print(f"REST API {api['id']}, resource {pets['id']} (/pets), POST: an HTTP_PROXY integration to old-backend (GET)")
PY

say "applying examples/petstore.yaml"
kubectl apply -f examples/petstore.yaml

say "starting the operator (log: $STATE/operator.log)"
curl -s -X POST "$APIGW_EMULATOR_ADMIN/_emulator/calls/reset" >/dev/null
if [ -f "$STATE/operator.pid" ] && kill -0 "$(cat "$STATE/operator.pid")" 2>/dev/null; then
    kill "$(cat "$STATE/operator.pid")"; while kill -0 "$(cat "$STATE/operator.pid")" 2>/dev/null; do sleep 0.2; done
fi
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/debug/apigw-operator run --namespace default --metrics-addr "127.0.0.1:$port" --resync-period 30 >"$STATE/operator.log" 2>&1 &
echo $! >"$STATE/operator.pid"
echo "operator pid $(cat "$STATE/operator.pid"), metrics on http://127.0.0.1:$port/metrics"

say "kubectl get agi, until READY=True"
kubectl get agi
kubectl wait --for=condition=Ready --timeout=60s agi/petstore-pets-post
kubectl get agi -o wide

say "the operations the operator sent (status.lastPatchOperations)"
kubectl get agi petstore-pets-post -o jsonpath='{.status.lastPatchOperations}'; echo

say "one change: timeoutInMillis 10000 -> 5000"
generation=$(kubectl get agi petstore-pets-post -o jsonpath='{.metadata.generation}')
kubectl patch agi petstore-pets-post --type merge -p '{"spec":{"timeoutInMillis":5000}}'
kubectl wait --for=jsonpath='{.status.observedGeneration}'=$((generation + 1)) --timeout=60s agi/petstore-pets-post
kubectl wait --for=condition=Ready --timeout=60s agi/petstore-pets-post
echo "status.lastPatchOperations:"
kubectl get agi petstore-pets-post -o jsonpath='{.status.lastPatchOperations}'; echo
echo "AWS calls the emulator counted since the operator started (lookups, reads, writes):"
curl -s "$APIGW_EMULATOR_ADMIN/_emulator/calls"; echo

cat <<TXT

Everything is still running:
  . target/testenv/env.sh                  # KUBECONFIG, AWS_ENDPOINT_URL, pinned kubectl
  kubectl get agi -o wide
  kubectl describe agi petstore-pets-post
  target/debug/apigw-operator plan -f examples/petstore.yaml --aws
  tail -f $STATE/operator.log
Stop it all with: make demo-down
TXT
