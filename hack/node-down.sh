# Stops node mode's parts (sourced by hack/testenv-down.sh, before the apiserver stops):
# kube-scheduler and kube-controller-manager (so that nothing makes new pods), the kubelets,
# every container of each node's containerd (ctr tasks kill/delete), containerd, any shim of
# theirs still running; then unmounts whatever is mounted under target/testenv/, kills what is
# left in the node's cgroups and removes them, and puts back the sysctls, iptables rules, links
# and network namespaces recorded by hack/node/host-state.py at up. Uses signal/alive from
# hack/testenv-down.sh. Idempotent.
# shellcheck shell=bash

# stop_pid NAME: SIGTERM, then SIGKILL after TIMEOUT; the pid file goes.
stop_service() {
    local name="$1" pid
    if pid="$(testenv_live_pid "$name")"; then
        testenv_log "stopping $name (pid $pid)"
        signal TERM "$pid"
        wait_gone "$name" "$pid"
    fi
    rm -f "$STATE/$name.pid"
}

wait_gone() {
    local name="$1" pid="$2" deadline
    deadline=$(($(date +%s) + TIMEOUT))
    while alive "$pid" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
    if alive "$pid"; then
        testenv_log "$name (pid $pid) still runs after ${TIMEOUT}s; sending SIGKILL"
        signal KILL "$pid"
        for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    fi
}

# pids_naming TEXT PROGRAM: the pids of processes whose command line starts with PROGRAM and
# holds TEXT, one a line.
pids_naming() {
    local p
    for p in /proc/[0-9]*; do
        [ -r "$p/cmdline" ] || continue
        case "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" in
            "$2"*"$1"*) echo "${p#/proc/}" ;;
        esac
    done
    return 0
}

# umount_under DIR: every mount point under DIR, deepest first, until none is left (bounded).
umount_under() {
    local dir="$1" pass points p
    for pass in 1 2 3 4 5; do
        points="$(awk -v d="$dir" '{ p = $5; gsub(/\\040/, " ", p); if (p == d || index(p, d "/") == 1) print p }' /proc/self/mountinfo | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)"
        [ -n "$points" ] || return 0
        while IFS= read -r p; do
            umount "$p" 2>/dev/null || umount -l "$p" 2>/dev/null || true
        done <<<"$points"
    done
    testenv_log "WARNING: mounts remain under $dir after 5 passes"
}

# cgroup_cleanup ROOT: kills what is left in ROOT (every v1 hierarchy) and removes its cgroups.
cgroup_cleanup() {
    local root="$1" h d pass pid
    for pass in 1 2 3; do
        for h in /sys/fs/cgroup/*/; do
            [ -d "$h${root#/}" ] || continue
            while IFS= read -r d; do
                while IFS= read -r pid; do
                    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
                done <"$d/cgroup.procs"
            done < <(find "$h${root#/}" -depth -type d 2>/dev/null)
        done
        for h in /sys/fs/cgroup/*/; do
            [ -d "$h${root#/}" ] || continue
            find "$h${root#/}" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        done
        ls -d /sys/fs/cgroup/*/"${root#/}" >/dev/null 2>&1 || return 0
        sleep 0.2
    done
    testenv_log "WARNING: cgroups $root remain"
}

node_down() {
    local i sock dir ids id pid any=0
    for name in kube-scheduler kube-controller-manager; do stop_service "$name"; done
    for dir in "$STATE"/node[0-9]*; do
        [ -d "$dir" ] || continue
        any=1
        i="${dir##*/node}"
        stop_service "node$i-kubelet"
    done
    for dir in "$STATE"/node[0-9]*; do
        [ -d "$dir" ] || continue
        i="${dir##*/node}"
        sock="$dir/containerd.sock"
        if testenv_live_pid "node$i-containerd" >/dev/null && [ -S "$sock" ]; then
            ids="$(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null || true)"
            for id in $ids; do ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
            for id in $ids; do
                for _ in $(seq 1 50); do
                    ctr --address "$sock" -n k8s.io tasks delete "$id" >/dev/null 2>&1 && break
                    ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null | grep -qx "$id" || break
                    sleep 0.1
                done
            done
        fi
        stop_service "node$i-containerd"
        # Shims outlive containerd by design: stop those of this containerd.
        for pid in $(pids_naming "-address $sock" containerd-shim); do
            testenv_log "stopping containerd-shim pid $pid"
            kill -TERM "$pid" 2>/dev/null || true
            wait_gone containerd-shim "$pid"
        done
        cgroup_cleanup "$(node_cgroup_root "$i")"
    done
    [ "$any" = 1 ] || [ -f "$STATE/host-before.json" ] || return 0
    umount_under "$STATE"
    for dir in "$STATE"/node[0-9]*; do
        [ -d "$dir" ] || continue
        rm -rf --one-file-system "$dir"
    done
    rm -f "$STATE/pause.oci.tar"
    python3 "$HACK_DIR/node/host-state.py" restore "$STATE" || testenv_log "WARNING: restoring the host's state failed"
}
