# Node mode of the test environment (TESTENV_NODE=1 hack/testenv-up.sh, or `make node-up`):
# sourced by hack/testenv-up.sh, whose helpers (start, await, free_port, fail) it uses.
#
# Starts, next to etcd and kube-apiserver:
#   - kube-controller-manager and kube-scheduler (built like kube-apiserver, hack/build-testenv.sh);
#   - TESTENV_NODE_COUNT (2) nodes; node i is named and addressed 127.0.0.<i+1> and has
#       * its own containerd (Debian's, with runc), root, state and socket under
#         target/testenv/node<i>/, a CNI configuration with the loopback plugin only (pods with
#         hostNetwork need none; a pod without hostNetwork gets only `lo`), and every registry
#         request sent to a closed port on 127.0.0.1 (HTTPS_PROXY): no image is ever pulled;
#       * its own kubelet (cgroupfs driver with failCgroupV1: false, its pods under the cgroup
#         /apigw-testenv-node<i>, no DNS for pods, the taint apigw.dev/testenv=node:NoSchedule so
#         that only pods that tolerate it run there);
#   - the pause image (hack/node/pause.c, static with musl-gcc) imported into each containerd.
# Every address is on 127.0.0.0/8. Before anything starts, hack/node/host-state.py records the
# host's sysctls, iptables rules, links and network namespaces; hack/node-down.sh puts them back.
# shellcheck shell=bash

NODE_PAUSE_IMAGE="localhost/apigw-testenv/pause:1"
NODE_TAINT_KEY="apigw.dev/testenv"

# node_prepare: before the apiserver starts. Installs the Debian packages, builds the binaries,
# records the host's state.
node_prepare() {
    [ "$(id -u)" = 0 ] || testenv_die "TESTENV_NODE=1 needs root (containerd, runc, the kubelet's cgroups and mounts)"
    apt_install containerd runc containernetworking-plugins musl-tools iptables
    for b in $TESTENV_NODE_BINARIES; do
        [ -x "$BIN_DIR/$b" ] || testenv_die "$BIN_DIR/$b is missing: hack/build-testenv.sh --node builds it"
    done
    python3 "$HACK_DIR/node/host-state.py" snapshot "$STATE" || testenv_die "could not record the host's state"
    mkdir -p "$(dirname "$BIN_DIR")/node"
    NODE_PAUSE_BIN="$(dirname "$BIN_DIR")/node/pause-$(sha256sum "$HACK_DIR/node/pause.c" | cut -c1-12)"
    if [ ! -x "$NODE_PAUSE_BIN" ]; then
        musl-gcc -static -Os -s -o "$NODE_PAUSE_BIN.tmp" "$HACK_DIR/node/pause.c" || testenv_die "musl-gcc could not build the pause program"
        mv -f "$NODE_PAUSE_BIN.tmp" "$NODE_PAUSE_BIN"
    fi
    python3 "$HACK_DIR/oci-image.py" pause --binary "$NODE_PAUSE_BIN" --name "$NODE_PAUSE_IMAGE" \
        --out "$STATE/pause.oci.tar" >/dev/null || testenv_die "could not write the pause image"
}

# node_pki: certificates of the kubelets (serving, for the apiserver to check) and of the
# apiserver as the kubelets' client.
node_pki() {
    (
        cd "$PKI"
        issue() {
            openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"
            openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
            printf '%s\n' "$3" >"$1.ext"
            openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
                -extfile "$1.ext" -out "$1.crt"
            rm -f "$1.csr" "$1.ext"
        }
        issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
        for i in $(seq 0 $((TESTENV_NODE_COUNT - 1))); do
            issue "kubelet$i" "/CN=kubelet-127.0.0.$((i + 1))" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.$((i + 1))"
        done
    ) >>"$STATE/openssl.log" 2>&1 || { cat "$STATE/openssl.log" >&2; fail "generating the kubelets' certificates failed"; }
    chmod 600 "$PKI"/*.key
}

# The apiserver's flags in node mode (instead of --disable-admission-plugins=ServiceAccount).
node_apiserver_flags() {
    printf '%s\n' \
        "--kubelet-client-certificate=$PKI/apiserver-kubelet-client.crt" \
        "--kubelet-client-key=$PKI/apiserver-kubelet-client.key" \
        "--kubelet-certificate-authority=$PKI/ca.crt" \
        "--kubelet-preferred-address-types=InternalIP,Hostname"
}

https_ok() { [ "$(curl -sS --max-time 3 -k "https://$1/healthz" 2>/dev/null)" = "ok" ]; }

start_controller_manager() {
    free_port KCM_PORT
    testenv_log "starting kube-controller-manager on 127.0.0.1:$KCM_PORT"
    start kube-controller-manager "$BIN_DIR/kube-controller-manager" \
        --kubeconfig="$STATE/kubeconfig" \
        --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
        --leader-elect=false \
        --service-account-private-key-file="$PKI/sa.key" \
        --root-ca-file="$PKI/ca.crt" \
        --use-service-account-credentials=false \
        --profiling=false --v=1
}
kcm_up() { https_ok "127.0.0.1:$KCM_PORT"; }

start_scheduler() {
    free_port SCHED_PORT
    testenv_log "starting kube-scheduler on 127.0.0.1:$SCHED_PORT"
    start kube-scheduler "$BIN_DIR/kube-scheduler" \
        --kubeconfig="$STATE/kubeconfig" \
        --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" \
        --leader-elect=false --profiling=false --v=1
}
sched_up() { https_ok "127.0.0.1:$SCHED_PORT"; }

# write_containerd_config I
write_containerd_config() {
    local i="$1" dir
    dir="$(node_dir "$i")"
    mkdir -p "$dir/cni/net.d" "$dir/containerd/root" "$dir/containerd/state" "$dir/containerd/opt"
    cat >"$dir/cni/net.d/10-loopback.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "apigw-testenv-lo", "plugins": [{"type": "loopback"}]}
EOF
    cat >"$dir/containerd.toml" <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$NODE_PAUSE_IMAGE"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$dir/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
    max_conf_num = 1
EOF
}

start_containerd() {
    local i="$1"
    testenv_log "starting containerd of node $i ($(node_containerd_socket "$i"))"
    # Every registry request goes to a closed port on 127.0.0.1: no pull leaves the machine.
    start "node$i-containerd" env HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 \
        https_proxy=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 NO_PROXY= no_proxy= \
        containerd --config "$(node_dir "$i")/containerd.toml"
}
containerd_up_i() { ctr --address "$(node_containerd_socket "$1")" version >/dev/null 2>&1; }

# write_kubelet_config I
write_kubelet_config() {
    local i="$1" dir ip
    dir="$(node_dir "$i")"
    ip="$(node_ip "$i")"
    mkdir -p "$dir/kubelet"
    free_port "KUBELET_PORT_$i"
    free_port "KUBELET_HEALTHZ_PORT_$i"
    local port_var="KUBELET_PORT_$i" healthz_var="KUBELET_HEALTHZ_PORT_$i"
    cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $ip
port: ${!port_var}
readOnlyPort: 0
healthzBindAddress: $ip
healthzPort: ${!healthz_var}
tlsCertFile: $PKI/kubelet$i.crt
tlsPrivateKeyFile: $PKI/kubelet$i.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$dir/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: $(node_cgroup_root "$i")
failCgroupV1: false
failSwapOn: false
resolvConf: ""
clusterDomain: ""
podLogsDir: $dir/pod-logs
maxPods: 20
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi"}
registerWithTaints:
- {key: $NODE_TAINT_KEY, value: node, effect: NoSchedule}
EOF
}

# The node's name is its IP address, so that its InternalIP is that address too (an explicit
# --node-ip may not be a loopback address) and the apiserver never looks a name up in DNS.
start_kubelet() {
    local i="$1" h root
    root="$(node_cgroup_root "$i")"
    # The kubelet wants its cgroupRoot to exist in every hierarchy (cgroup v1); a new cpuset
    # cgroup starts with no CPUs and no memory nodes, so it gets its parent's.
    for h in /sys/fs/cgroup/*/; do
        [ -d "$h" ] && [ ! -L "${h%/}" ] || continue
        mkdir -p "$h${root#/}" || fail "cannot create the cgroup $h${root#/}"
        if [ -f "$h/cpuset.cpus" ]; then
            cat "$h/cpuset.cpus" >"$h${root#/}/cpuset.cpus"
            cat "$h/cpuset.mems" >"$h${root#/}/cpuset.mems"
        fi
    done
    testenv_log "starting the kubelet of node $(node_ip "$i")"
    start "node$i-kubelet" "$BIN_DIR/kubelet" \
        --config="$(node_dir "$i")/kubelet.yaml" \
        --kubeconfig="$STATE/kubeconfig" \
        --hostname-override="$(node_ip "$i")" \
        --root-dir="$(node_dir "$i")/kubelet" \
        --v=1
}

node_ready() {
    [ "$(KUBECONFIG="$STATE/kubeconfig" "$BIN_DIR/kubectl" get node "$1" \
        -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# node_start: after the apiserver is ready.
node_start() {
    local i
    start_controller_manager
    start_scheduler
    for i in $(seq 0 $((TESTENV_NODE_COUNT - 1))); do
        write_containerd_config "$i"
        start_containerd "$i"
    done
    await kube-controller-manager kube-controller-manager kcm_up start_controller_manager
    await kube-scheduler kube-scheduler sched_up start_scheduler
    for i in $(seq 0 $((TESTENV_NODE_COUNT - 1))); do
        NODE_I="$i"
        await "node$i-containerd" "containerd of node $i" node_containerd_ready_cur false
        ctr --address "$(node_containerd_socket "$i")" -n k8s.io images import "$STATE/pause.oci.tar" >>"$STATE/node$i-containerd.log" 2>&1 ||
            fail "importing the pause image into node $i's containerd failed"
        # The operator's image, when `make image` built it (hack/build-image.sh imports it too).
        if ls "$TESTENV_REPO_ROOT"/target/image/apigw-operator-*.oci.tar >/dev/null 2>&1; then
            for img in "$TESTENV_REPO_ROOT"/target/image/apigw-operator-*.oci.tar; do
                ctr --address "$(node_containerd_socket "$i")" -n k8s.io images import "$img" >>"$STATE/node$i-containerd.log" 2>&1 ||
                    fail "importing $img into node $i's containerd failed"
            done
        fi
        write_kubelet_config "$i"
        start_kubelet "$i"
    done
    for i in $(seq 0 $((TESTENV_NODE_COUNT - 1))); do
        NODE_I="$i"
        await "node$i-kubelet" "node $(node_ip "$i")" node_ready_cur false
    done
}
node_containerd_ready_cur() { containerd_up_i "$NODE_I"; }
node_ready_cur() { node_ready "$(node_ip "$NODE_I")"; }
