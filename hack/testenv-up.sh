#!/usr/bin/env bash
# Starts the test environment on free 127.0.0.1 ports (run from anywhere; it
# works in the repository root's target/testenv/):
#   - etcd and kube-apiserver (RBAC on, TokenRequest on), built by
#     hack/build-testenv.sh from the versions in hack/versions.env;
#   - the AWS API Gateway emulator (hack/emulator/server.py, moto-based).
# Writes target/testenv/env.sh, to be sourced (`. target/testenv/env.sh`), which
# exports KUBECONFIG, AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, APIGW_EMULATOR_ADMIN, TESTENV_BIN and puts TESTENV_BIN
# first on PATH (the pinned kubectl and helm).
#
# Idempotent: when everything it started is still up and healthy it changes
# nothing and exits 0; when only part of it is up, it stops that part and
# starts afresh (a fresh etcd, so a fresh cluster).
#
# Environment:
#   TESTENV_USE_EXISTING_CLUSTER=1 with KUBECONFIG=...: use that cluster; only
#       the emulator is started and env.sh carries the given KUBECONFIG.
#   TESTENV_NODE=1: node mode (hack/node-up.sh): also kube-controller-manager,
#       kube-scheduler and TESTENV_NODE_COUNT (2) nodes (containerd + kubelet each),
#       on which pods run for real. Needs root; installs Debian's containerd, runc,
#       containernetworking-plugins, musl-tools and iptables when missing.
#   TESTENV_START_TIMEOUT: seconds to wait for each part to be ready (90).
#   APIGW_TESTENV_CACHE: cache root of the built binaries (see build-testenv.sh).
# Stop it all with hack/testenv-down.sh (make testenv-down).
set -euo pipefail
# shellcheck source=hack/errtrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/errtrap.sh"

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
. "$HACK_DIR/lib.sh"
testenv_load_versions

STATE="$TESTENV_STATE_DIR"
PKI="$STATE/pki"
TIMEOUT="${TESTENV_START_TIMEOUT:-90}"
mkdir -p "$STATE"

# One testenv-up/down at a time.
if command -v flock >/dev/null 2>&1; then
    exec 8>"$STATE/.lock"
    flock -w 300 8 || testenv_die "another testenv-up/down holds $STATE/.lock"
fi

# curl and openssl: installed with apt-get when missing (root), else a message naming the command.
"$HACK_DIR/ensure-packages.sh" curl openssl
command -v base64 >/dev/null 2>&1 || testenv_die "base64 is needed by hack/testenv-up.sh; install coreutils and rerun: make testenv-up"

BIN_DIR="$(testenv_bin_dir)"
if [ "${TESTENV_USE_EXISTING_CLUSTER:-}" = "1" ]; then
    [ -n "${KUBECONFIG:-}" ] || testenv_die "TESTENV_USE_EXISTING_CLUSTER=1 needs KUBECONFIG set to the cluster's kubeconfig"
    # env.sh carries absolute paths (it is sourced from other directories).
    abs_kubeconfig=""
    IFS=: read -r -a kc_parts <<<"$KUBECONFIG"
    for kc in "${kc_parts[@]}"; do
        case "$kc" in /*) ;; *) kc="$PWD/$kc" ;; esac
        [ -r "$kc" ] || testenv_die "KUBECONFIG names $kc, which is not a readable file"
        abs_kubeconfig="${abs_kubeconfig:+$abs_kubeconfig:}$kc"
    done
    KUBECONFIG="$abs_kubeconfig"
    MODE="existing $KUBECONFIG"
else
    MODE="local $BIN_DIR"
    if [ "${TESTENV_NODE:-}" = 1 ]; then MODE="$MODE node x$TESTENV_NODE_COUNT"; fi
fi
NODE_MODE=0
case "$MODE" in *" node x"*) NODE_MODE=1 ;; esac
# shellcheck source=hack/node-up.sh
. "$HACK_DIR/node-up.sh"

EMULATOR_SETUP="$TESTENV_REPO_ROOT/hack/emulator/setup-venv.sh"
EMULATOR_SERVER="$TESTENV_REPO_ROOT/hack/emulator/server.py"

# --- health checks -----------------------------------------------------------

pid_alive() { testenv_live_pid "$1" >/dev/null; }

apiserver_ready() {
    local port="$1"
    [ "$(curl -sS --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
        "https://127.0.0.1:$port/readyz" 2>/dev/null)" = "ok" ]
}

etcd_ready() {
    curl -sS --max-time 3 "http://127.0.0.1:$1/health" 2>/dev/null | grep -q '"health":"true"'
}

emulator_ready() {
    [ "$(curl -sS --max-time 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/_emulator/calls" 2>/dev/null)" = "200" ]
}

# Reads a KEY=value line from $STATE/ports.
state_port() { sed -n "s/^$1=//p" "$STATE/ports" 2>/dev/null; }

already_up() {
    [ -s "$STATE/env.sh" ] && [ -s "$STATE/ports" ] && [ -s "$STATE/mode" ] || return 1
    [ "$(cat "$STATE/mode")" = "$MODE" ] || return 1
    pid_alive emulator && emulator_ready "$(state_port EMULATOR_PORT)" || return 1
    case "$MODE" in
        local*)
            pid_alive etcd && pid_alive kube-apiserver || return 1
            apiserver_ready "$(state_port APISERVER_PORT)" || return 1
            ;;
    esac
    if [ "$NODE_MODE" = 1 ]; then
        pid_alive kube-controller-manager && pid_alive kube-scheduler || return 1
        local i
        for i in $(seq 0 $((TESTENV_NODE_COUNT - 1))); do
            pid_alive "node$i-containerd" && pid_alive "node$i-kubelet" || return 1
        done
    fi
}

if already_up; then
    testenv_log "already up and healthy ($(cat "$STATE/mode")); reusing it. Use: . target/testenv/env.sh"
    exit 0
fi

# Something (or nothing) is left over: stop it and start afresh.
if ls "$STATE"/*.pid >/dev/null 2>&1 || [ -f "$STATE/host-before.json" ]; then
    testenv_log "a previous test environment is only partly up or differs; stopping it first"
    TESTENV_LOCK_HELD=1 "$HACK_DIR/testenv-down.sh"
fi

# --- failure handling --------------------------------------------------------

STARTED=0
fail() {
    local log
    printf '[testenv] ERROR: %s\n' "$*" >&2
    for log in etcd kube-apiserver emulator kube-controller-manager kube-scheduler node0-containerd node0-kubelet node1-containerd node1-kubelet; do
        if [ -s "$STATE/$log.log" ]; then
            printf '\n[testenv] ---- last lines of %s ----\n' "$STATE/$log.log" >&2
            tail -n 30 "$STATE/$log.log" >&2
        fi
    done
    if [ "$STARTED" = 1 ]; then
        printf '\n[testenv] stopping what was started\n' >&2
        TESTENV_LOCK_HELD=1 "$HACK_DIR/testenv-down.sh" >&2 || true
    fi
    exit 1
}

# --- ports -------------------------------------------------------------------

# Ports are picked below the kernel's ephemeral range (where outgoing
# connections take their local ports, which a listener would collide with).
read -r EPH_LOW EPH_HIGH </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { EPH_LOW=32768; EPH_HIGH=60999; }
if [ "$EPH_LOW" -gt 12000 ]; then
    PORT_MIN=10000 PORT_SPAN=$((EPH_LOW - 10000))
elif [ "$EPH_HIGH" -lt 60000 ]; then
    PORT_MIN=$((EPH_HIGH + 1)) PORT_SPAN=$((65535 - EPH_HIGH))
else
    PORT_MIN=20000 PORT_SPAN=40000
fi

PICKED=" "
# free_port VAR: sets VAR to a TCP port that no socket on this machine uses
# (listening or connected) and that was not picked before.
free_port() {
    local p _
    for _ in $(seq 1 200); do
        p=$((PORT_MIN + (RANDOM * 32768 + RANDOM) % PORT_SPAN))
        case "$PICKED" in *" $p "*) continue ;; esac
        if command -v ss >/dev/null 2>&1; then
            ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null | grep -q . && continue
        fi
        # Nothing must answer a connect either.
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
        PICKED="$PICKED$p "
        printf -v "$1" '%s' "$p"
        return 0
    done
    fail "found no free TCP port on 127.0.0.1"
}

# --- starting and waiting ----------------------------------------------------

# start NAME CMD...: starts CMD in its own session, in the background, logging
# to $STATE/NAME.log, and writes its pid to $STATE/NAME.pid.
start() {
    local name="$1" pid
    shift
    : >"$STATE/$name.log"
    # 8>&-: the service must not inherit (and so hold) the lock.
    setsid "$@" >>"$STATE/$name.log" 2>&1 </dev/null 8>&- &
    pid=$!
    echo "$pid" >"$STATE/$name.pid"
    STARTED=1
}

# await NAME WHAT READY START: bounded wait (TESTENV_START_TIMEOUT) until the
# command READY succeeds. When the service exits because another process took
# its port first, START (which picks new ports) runs again, up to 3 times.
await() {
    local name="$1" what="$2" ready="$3" restart="$4" deadline tries=1
    deadline=$(($(date +%s) + TIMEOUT))
    until "$ready"; do
        if ! pid_alive "$name"; then
            if [ "$tries" -lt 3 ] && grep -qi 'address already in use' "$STATE/$name.log"; then
                tries=$((tries + 1))
                testenv_log "$what lost a port to another process; restarting it on other ports"
                "$restart"
                deadline=$(($(date +%s) + TIMEOUT))
                continue
            fi
            fail "$what exited while starting (log: $STATE/$name.log)"
        fi
        [ "$(date +%s)" -lt "$deadline" ] || fail "$what was not ready within ${TIMEOUT}s (TESTENV_START_TIMEOUT)"
        sleep 0.2
    done
}

[ -f "$EMULATOR_SETUP" ] || testenv_die "missing $EMULATOR_SETUP (it sets up the AWS API Gateway emulator's venv); it is part of the repository: restore it (git checkout -- hack/emulator) and rerun: make testenv-up"
[ -f "$EMULATOR_SERVER" ] || testenv_die "missing $EMULATOR_SERVER (the AWS API Gateway emulator); it is part of the repository: restore it (git checkout -- hack/emulator) and rerun: make testenv-up"

case "$MODE" in
    local*)
        BIN_DIR="$("$HACK_DIR/build-testenv.sh" 8>&-)" || testenv_die "building the test environment binaries failed; see above, then rerun: make testenv-up"
        ;;
esac
if [ "$NODE_MODE" = 1 ]; then node_prepare; fi

testenv_log "setting up the emulator's Python venv: $EMULATOR_SETUP"
PY_OUT="$(bash "$EMULATOR_SETUP" 8>&-)" || testenv_die "$EMULATOR_SETUP failed (see above); fix it and rerun: make testenv-up"
PY="$(printf '%s\n' "$PY_OUT" | tail -n 1)"
[ -x "$PY" ] || testenv_die "$EMULATOR_SETUP printed '$PY', which is not an executable Python interpreter"

rm -f "$STATE/env.sh" "$STATE/mode" "$STATE/ports" "$STATE"/*.log

# --- the emulator --------------------------------------------------------------

start_emulator() {
    free_port EMULATOR_PORT
    testenv_log "starting the API Gateway emulator on 127.0.0.1:$EMULATOR_PORT"
    start emulator "$PY" "$EMULATOR_SERVER" --host 127.0.0.1 --port "$EMULATOR_PORT"
}
emulator_up() { emulator_ready "$EMULATOR_PORT"; }

# --- etcd and kube-apiserver -------------------------------------------------

make_pki() {
    rm -rf "$PKI"
    mkdir -p "$PKI"
    chmod 700 "$PKI"
    (
        cd "$PKI"
        # issue NAME SUBJECT EXTENSIONS: a key and a certificate signed by the CA.
        issue() {
            openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"
            openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
            printf '%s\n' "$3" >"$1.ext"
            openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
                -extfile "$1.ext" -out "$1.crt"
            rm -f "$1.csr" "$1.ext"
        }
        openssl ecparam -name prime256v1 -genkey -noout -out ca.key
        openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=apigw-operator-testenv-ca" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -out ca.crt
        issue apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
        issue admin "/O=system:masters/CN=testenv-admin" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
        # ServiceAccount token signing key pair (ES256).
        openssl ecparam -name prime256v1 -genkey -noout -out sa.key
        openssl ec -in sa.key -pubout -out sa.pub
    ) >"$STATE/openssl.log" 2>&1 || { cat "$STATE/openssl.log" >&2; fail "generating certificates with openssl in $PKI failed"; }
    chmod 600 "$PKI"/*.key
}

write_kubeconfig() {
    local out="$STATE/kubeconfig"
    (
        umask 077
        cat >"$out.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: testenv-admin
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/admin.crt")
    client-key-data: $(base64 -w0 <"$PKI/admin.key")
contexts:
- name: testenv
  context:
    cluster: testenv
    user: testenv-admin
    namespace: default
current-context: testenv
EOF
    )
    mv -f "$out.tmp" "$out"
}

start_etcd() {
    free_port ETCD_PORT
    free_port ETCD_PEER_PORT
    rm -rf "$STATE/etcd-data"
    testenv_log "starting etcd $ETCD_VERSION on 127.0.0.1:$ETCD_PORT"
    start etcd "$BIN_DIR/etcd" \
        --name=testenv \
        --data-dir="$STATE/etcd-data" \
        --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster="testenv=http://127.0.0.1:$ETCD_PEER_PORT" \
        --unsafe-no-fsync \
        --log-level=warn
}
etcd_up() { etcd_ready "$ETCD_PORT"; }

start_apiserver() {
    free_port APISERVER_PORT
    testenv_log "starting kube-apiserver $KUBE_VERSION on 127.0.0.1:$APISERVER_PORT"
    # No kube-controller-manager runs, so the ServiceAccount admission plugin
    # (which wants each namespace's "default" ServiceAccount) is off; the
    # TokenRequest API (kubectl create token) needs only the
    # service-account-* flags. With only a loopback address to advertise, the
    # "kubernetes" Service gets no endpoints (--endpoint-reconciler-type=none).
    # In node mode a controller-manager makes the ServiceAccounts, so the
    # admission plugin is on, and the apiserver reaches the kubelets with a
    # client certificate and checks theirs.
    local mode_flags=(--disable-admission-plugins=ServiceAccount)
    if [ "$NODE_MODE" = 1 ]; then mapfile -t mode_flags < <(node_apiserver_flags); fi
    start kube-apiserver "$BIN_DIR/kube-apiserver" \
        --bind-address=127.0.0.1 \
        --advertise-address=127.0.0.1 \
        --endpoint-reconciler-type=none \
        --secure-port="$APISERVER_PORT" \
        --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
        --tls-cert-file="$PKI/apiserver.crt" \
        --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" \
        --authorization-mode=RBAC \
        --service-account-issuer="https://kubernetes.default.svc.cluster.local" \
        --service-account-key-file="$PKI/sa.pub" \
        --service-account-signing-key-file="$PKI/sa.key" \
        --service-cluster-ip-range=10.0.0.0/24 \
        "${mode_flags[@]}" \
        --allow-privileged=true \
        --enable-priority-and-fairness=false \
        --profiling=false \
        --v=1
    write_kubeconfig
}
apiserver_up() { apiserver_ready "$APISERVER_PORT"; }

ETCD_PORT="" APISERVER_PORT=""
start_emulator
case "$MODE" in
    local*)
        make_pki
        if [ "$NODE_MODE" = 1 ]; then node_pki; fi
        start_etcd
        await etcd etcd etcd_up start_etcd
        start_apiserver
        KUBECONFIG_OUT="$STATE/kubeconfig"
        ;;
    existing*)
        KUBECONFIG_OUT="$KUBECONFIG"
        testenv_log "TESTENV_USE_EXISTING_CLUSTER=1: using KUBECONFIG=$KUBECONFIG; not starting etcd or kube-apiserver"
        ;;
esac

await emulator "the API Gateway emulator" emulator_up start_emulator
if [ -n "$APISERVER_PORT" ]; then
    await kube-apiserver kube-apiserver apiserver_up start_apiserver
fi
if [ "$NODE_MODE" = 1 ]; then node_start; fi

# kube-apiserver 1.35 stops watching ConfigMap params for good once no binding with a ConfigMap
# paramKind is left (kubernetes/kubernetes#130887): after a test uninstalls the chart's
# admission policy, every later one would admit everything. A binding that matches nothing
# keeps that informer alive for the life of the test environment.
if [ -n "$APISERVER_PORT" ]; then
    KEEPER_KUBECTL="$BIN_DIR/kubectl"; [ -x "$KEEPER_KUBECTL" ] || KEEPER_KUBECTL=kubectl
    "$KEEPER_KUBECTL" --kubeconfig "$STATE/kubeconfig" apply -f - >/dev/null <<'YAML' || testenv_die "creating the ConfigMap-param keeper policy failed; see above"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: testenv-configmap-param-keeper}
spec:
  failurePolicy: Ignore
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
      - {apiGroups: ["testenv.invalid"], apiVersions: ["*"], operations: [CREATE], resources: ["nothing"]}
  validations: [{expression: "true"}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: testenv-configmap-param-keeper}
spec:
  policyName: testenv-configmap-param-keeper
  validationActions: [Deny]
  paramRef: {name: testenv-keeper, namespace: default, parameterNotFoundAction: Allow}
YAML
fi

# --- env.sh ------------------------------------------------------------------

if [ -x "$BIN_DIR/kubectl" ]; then TESTENV_BIN_OUT="$BIN_DIR"; else TESTENV_BIN_OUT=""; fi
{
    echo "# Written by hack/testenv-up.sh; source it: . target/testenv/env.sh"
    printf "export KUBECONFIG='%s'\n" "$KUBECONFIG_OUT"
    printf "export AWS_ENDPOINT_URL='http://127.0.0.1:%s'\n" "$EMULATOR_PORT"
    echo "export AWS_REGION='us-east-1'"
    echo "export AWS_ACCESS_KEY_ID='testing'"
    echo "export AWS_SECRET_ACCESS_KEY='testing'"
    printf "export APIGW_EMULATOR_ADMIN='http://127.0.0.1:%s'\n" "$EMULATOR_PORT"
    printf "export TESTENV_BIN='%s'\n" "$TESTENV_BIN_OUT"
    if [ "$NODE_MODE" = 1 ]; then
        echo "export TESTENV_NODE=1"
        printf "export TESTENV_NODES='%s'\n" "$(for i in $(seq 0 $((TESTENV_NODE_COUNT - 1))); do node_ip "$i"; done | tr '\n' ' ' | sed 's/ $//')"
        printf "export TESTENV_NODE_TAINT='%s'\n" "$NODE_TAINT_KEY=node:NoSchedule"
        printf "export TESTENV_APISERVER_HOST='127.0.0.1'\nexport TESTENV_APISERVER_PORT='%s'\n" "$APISERVER_PORT"
        printf "export TESTENV_CONTAINERD_SOCKETS='%s'\n" "$(node_containerd_sockets | tr '\n' ' ' | sed 's/ $//')"
    fi
    # shellcheck disable=SC2016
    echo 'if [ -n "$TESTENV_BIN" ]; then case ":$PATH:" in *":$TESTENV_BIN:"*) ;; *) export PATH="$TESTENV_BIN:$PATH" ;; esac; fi'
} >"$STATE/env.sh.tmp"
printf 'EMULATOR_PORT=%s\nETCD_PORT=%s\nAPISERVER_PORT=%s\n' "$EMULATOR_PORT" "$ETCD_PORT" "$APISERVER_PORT" >"$STATE/ports"
echo "$MODE" >"$STATE/mode"
mv -f "$STATE/env.sh.tmp" "$STATE/env.sh"

if [ -n "$APISERVER_PORT" ]; then
    testenv_log "up: kube-apiserver https://127.0.0.1:$APISERVER_PORT, emulator http://127.0.0.1:$EMULATOR_PORT"
    if [ "$NODE_MODE" = 1 ]; then testenv_log "nodes: $(for i in $(seq 0 $((TESTENV_NODE_COUNT - 1))); do node_ip "$i"; done | tr '\n' ' ')(kubectl get nodes)"; fi
else
    testenv_log "up: emulator http://127.0.0.1:$EMULATOR_PORT, cluster from KUBECONFIG=$KUBECONFIG_OUT"
fi
testenv_log "use it with: . target/testenv/env.sh   (stop with: make testenv-down)"
