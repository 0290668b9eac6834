#!/usr/bin/env bash
# `make demo`: the operator against a real API server and the API Gateway emulator, in one
# command. It leaves everything running and prints how to look around and how to stop
# (`make demo-down`). DEMO_USE_EXISTING_CLUSTER=1 uses the cluster of KUBECONFIG instead of
# starting kube-apiserver (the emulator still starts locally).
#
# DEMO_IN_CLUSTER=1: the operator runs in the cluster, as the chart's pod from the image that
# `make image` builds, on the test environment's nodes (node mode, TESTENV_NODE=1). Its default
# is 1 when the test environment already runs in node mode (`make node-up`) and 0 otherwise:
# node mode needs root and, cold, about 6 more minutes of Go builds and a few minutes of the
# musl release build, too much for the first `make demo` of a quick start. DEMO_IN_CLUSTER=0
# runs target/debug/apigw-operator as a process.
set -euo pipefail
# shellcheck source=hack/errtrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/errtrap.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STATE=target/demo
mkdir -p "$STATE"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ -z "${DEMO_IN_CLUSTER:-}" ]; then
    if grep -qs ' node x' target/testenv/mode; then DEMO_IN_CLUSTER=1; else DEMO_IN_CLUSTER=0; fi
fi

say "building the operator"
cargo build --quiet

say "starting the test environment"
if [ "$DEMO_IN_CLUSTER" = 1 ]; then
    [ "${DEMO_USE_EXISTING_CLUSTER:-}" != 1 ] || { echo "DEMO_IN_CLUSTER=1 runs on the local nodes: not with DEMO_USE_EXISTING_CLUSTER=1" >&2; exit 1; }
    TESTENV_NODE=1 hack/testenv-up.sh
elif [ "${DEMO_USE_EXISTING_CLUSTER:-}" = 1 ]; then
    [ -n "${KUBECONFIG:-}" ] || { echo "DEMO_USE_EXISTING_CLUSTER=1 needs KUBECONFIG" >&2; exit 1; }
    TESTENV_USE_EXISTING_CLUSTER=1 hack/testenv-up.sh
else
    hack/testenv-up.sh
fi
# shellcheck disable=SC1091
. target/testenv/env.sh
python="$(hack/emulator/setup-venv.sh)"

say "installing the CRDs"
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

say "admitting the namespace default: examples/access.yaml (ApiGatewayAccess demo; the operator refuses namespaces no access admits)"
kubectl apply -f examples/access.yaml

say "applying examples/petstore.yaml"
kubectl apply -f examples/petstore.yaml

curl -s -X POST "$APIGW_EMULATOR_ADMIN/_emulator/calls/reset" >/dev/null
if [ -f "$STATE/operator.pid" ] && kill -0 "$(cat "$STATE/operator.pid")" 2>/dev/null; then
    kill "$(cat "$STATE/operator.pid")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$STATE/operator.pid")" 2>/dev/null || break; sleep 0.2; done
    rm -f "$STATE/operator.pid"
fi
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [ "$DEMO_IN_CLUSTER" = 1 ]; then
    say "building the operator's image and importing it into the nodes (make image)"
    hack/build-image.sh >/dev/null
    say "helm install apigw-operator charts/apigw-operator (the pod, from ghcr.io/apigw-operator/apigw-operator:$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' charts/apigw-operator/Chart.yaml))"
    # The chart's defaults, plus what this environment needs: hostNetwork (the API server and the
    # emulator listen on 127.0.0.1 and no kube-proxy runs), the API server's address, the
    # emulator's endpoint and dummy credentials, and the nodes' taint.
    cat >"$STATE/values.yaml" <<YAML
aws: {region: us-east-1, endpointUrl: "$AWS_ENDPOINT_URL"}
watchNamespace: default
resyncPeriod: 30
hostNetwork: true
metrics: {port: $port}
extraEnv:
  - {name: KUBERNETES_SERVICE_HOST, value: "$TESTENV_APISERVER_HOST"}
  - {name: KUBERNETES_SERVICE_PORT, value: "$TESTENV_APISERVER_PORT"}
  - {name: AWS_ACCESS_KEY_ID, value: testing}
  - {name: AWS_SECRET_ACCESS_KEY, value: testing}
tolerations:
  - {key: "${TESTENV_NODE_TAINT%%=*}", operator: Exists, effect: NoSchedule}
YAML
    helm upgrade --install apigw-operator charts/apigw-operator -n apigw-system --create-namespace \
        -f "$STATE/values.yaml" --wait --timeout 180s
    echo "metrics on the pod's IP (its node's): kubectl get pods -n apigw-system -o wide; port $port"
else
    say "starting the operator (log: $STATE/operator.log)"
    target/debug/apigw-operator run --namespace default --metrics-addr "127.0.0.1:$port" --resync-period 30 >"$STATE/operator.log" 2>&1 &
    echo $! >"$STATE/operator.pid"
    echo "operator pid $(cat "$STATE/operator.pid"), metrics on http://127.0.0.1:$port/metrics"
fi

say "kubectl get agi, until READY=True"
kubectl get agi
kubectl wait --for=condition=Ready --timeout=60s agi/petstore-pets-post
kubectl get agi -o wide

say "publishing it: examples/petstore-stage.yaml (stage prod, created by the first deployment)"
kubectl apply -f examples/petstore-stage.yaml
kubectl wait --for=condition=Ready --timeout=60s ags/petstore-prod
kubectl get ags -o wide
api=$(kubectl get agi petstore-pets-post -o jsonpath='{.status.target.restApiId}')
served() {
    "$python" - "$APIGW_EMULATOR_ADMIN/_emulator/served/$api/prod" <<'PY'
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1]))
i = d["integrations"]["/pets POST"]
print(f"stage prod serves deployment {d['deploymentId']}: timeoutInMillis {i.get('timeoutInMillis')}, uri {i['uri']}")
PY
}
served

say "the operations the operator sent (status.lastPatchOperations)"
kubectl get agi petstore-pets-post -o jsonpath='{.status.lastPatchOperations}'; echo

say "one change: timeoutInMillis 10000 -> 5000"
generation=$(kubectl get agi petstore-pets-post -o jsonpath='{.metadata.generation}')
kubectl patch agi petstore-pets-post --type merge -p '{"spec":{"timeoutInMillis":5000}}'
kubectl wait --for=jsonpath='{.status.observedGeneration}'=$((generation + 1)) --timeout=60s agi/petstore-pets-post
kubectl wait --for=condition=Ready --timeout=60s agi/petstore-pets-post
echo "status.lastPatchOperations:"
kubectl get agi petstore-pets-post -o jsonpath='{.status.lastPatchOperations}'; echo
say "the change goes live: the stage deploys it once the quiet time (3 s) has passed"
echo "before the deployment, the stage still serves the old draft:"
served
# "Live" in a pipeline: the stage's deployedAt is after the integration's last write, and the
# stage is Ready (README: "Waiting for live").
written=$(kubectl get agi petstore-pets-post -o jsonpath='{.status.lastWriteTime}')
for _ in $(seq 1 120); do
    deployed=$(kubectl get ags petstore-prod -o jsonpath='{.status.deployedAt}')
    if [[ "$deployed" > "$written" ]]; then break; fi
    sleep 0.5
done
kubectl wait --for=condition=Ready --timeout=60s ags/petstore-prod
echo "after it:"
served
kubectl get ags -o wide

echo "AWS calls the emulator counted since the operator started (lookups, reads, writes):"
curl -s "$APIGW_EMULATOR_ADMIN/_emulator/calls"; echo

if [ "$DEMO_IN_CLUSTER" = 1 ]; then
    say "the operator's pod next to the object it manages"
    kubectl get pods -n apigw-system -o wide
    echo
    kubectl get agi -o wide
    logs="kubectl logs -n apigw-system deploy/apigw-operator -f"
else
    logs="tail -f $STATE/operator.log"
fi

cat <<TXT

Everything is still running:
  . target/testenv/env.sh                  # KUBECONFIG, AWS_ENDPOINT_URL, pinned kubectl
  kubectl get agi,ags -o wide
  kubectl describe agi petstore-pets-post
  kubectl describe ags petstore-prod
  target/debug/apigw-operator plan -f examples/petstore.yaml --aws
  $logs
Stop it all with: make demo-down
TXT
