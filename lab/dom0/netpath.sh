#!/bin/bash
# Runs in dom0 (copied to /mnt/lab/bin by lab/test). The network path of the paper with plain xl:
# a PV driver domain owning a passed-through e1000 on bridge br0, and a guest whose vif backend
# lives in that driver domain. Prints KEY=value lines for lab/test; exits non-zero on failure.
usage="usage: netpath.sh nics IPERF_HOST:PORT BDF... | dd-up NAME BDF IP [IMAGE_DIR|- [MEMORY_MIB]] | dd-exec NAME 'COMMANDS' | dd-cpu NAME | guest-up NAME DD IP IPERF_HOST:PORT SECS | guest-iperf NAME WAIT_SECS | down BDF NAME..."
set -euo pipefail
export PATH=/usr/lib/xen-4.17/bin:$PATH
CONSOLE_DIR=/var/log/xen/console
# The driver domain and its guest each on a pCPU of their own (dom0 floats): whether Xen's scheduler put the two
# together or apart is one source of the swings of checks 3 and 4's throughput from run to run (session 28).
DD_CPU=2
GUEST_CPU=3
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# wait_for SECS DESCRIPTION COMMAND...: poll COMMAND every 0.5 s, fail after SECS.
wait_for() {
  local secs=$1 what=$2 end
  shift 2
  end=$(($(date +%s) + secs))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then
      echo "timed out after ${secs}s waiting for $what" >&2
      return 1
    fi
    sleep 0.5
  done
}
console_has() { grep -q -- "$2" "$CONSOLE_DIR/guest-$1.log" 2>/dev/null; }

case "${1:-}" in
  nics)
    # dom0 drives each NIC itself (e1000, own network namespace, the same 10.0.2.15/24 in each)
    # and runs a 2 s iperf3 through it; prints NIC_<bdf>=<bits/s> or NIC_<bdf>=FAIL:<why>.
    [ $# -ge 3 ] || {
      echo "$usage" >&2
      exit 2
    }
    target=$2
    shift 2
    modprobe e1000
    i=0 rc=0
    for bdf in "$@"; do
      i=$((i + 1))
      ns=labnic$i
      dev=/sys/bus/pci/devices/$bdf
      if [ "$(cat "$dev/vendor" 2>/dev/null):$(cat "$dev/device" 2>/dev/null)" != "0x8086:0x100e" ]; then
        echo "NIC_$bdf=FAIL:not-an-e1000"
        rc=1
        continue
      fi
      wait_for 30 "a net device for $bdf" ls "$dev/net" || {
        echo "NIC_$bdf=FAIL:no-netdev"
        rc=1
        continue
      }
      ifc=$(ls "$dev/net" | head -1)
      ip netns add "$ns"
      ip link set "$ifc" netns "$ns"
      ip -n "$ns" link set lo up
      ip -n "$ns" addr add 10.0.2.15/24 dev "$ifc"
      ip -n "$ns" link set "$ifc" up
      bps=""
      for _ in 1 2 3; do
        if ip netns exec "$ns" iperf3 -c "${target%:*}" -p "${target#*:}" -t 2 -J >/tmp/$ns.json 2>&1; then
          bps=$(awk '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { gsub(/[^0-9.]/, "", $2); print $2; exit }' /tmp/$ns.json)
          break
        fi
        sleep 1
      done
      if [ -n "$bps" ]; then echo "NIC_$bdf=$bps"; else
        echo "NIC_$bdf=FAIL:iperf3"
        tail -5 /tmp/$ns.json >&2
        rc=1
      fi
      ip netns del "$ns"
    done
    sleep 1
    rmmod e1000 || true # leave the NICs unbound, as at boot
    exit $rc
    ;;
  dd-up)
    # Without IMAGE_DIR (or with -): the stock driver domain (Debian's kernel and root, lab.role=dd, 512 MiB).
    # With IMAGE_DIR (an `iovm image build` image): iovm's minimal IOVM, no disk, MEMORY_MIB (default 64).
    [ $# -ge 4 ] && [ $# -le 6 ] || {
      echo "$usage" >&2
      exit 2
    }
    name=$2 bdf=$3 ip=$4 image=${5:-} memory=${6:-64}
    [ "$image" = - ] && image=
    modprobe xen-pciback
    xl pci-assignable-list | grep -q "$bdf" || xl pci-assignable-add "$bdf"
    if [ -n "$image" ]; then
      cat >"/tmp/$name.cfg" <<CFG
name = "$name"
type = "pv"
kernel = "$image/vmlinux"
ramdisk = "$image/initrd.img"
extra = "console=hvc0 iovm.nics=$bdf=br0"
memory = $memory
vcpus = 1
cpus = "$DD_CPU"
driver_domain = 1
pci = [ "$bdf" ]
CFG
    else
      memory=512
      cat >"/tmp/$name.cfg" <<CFG
name = "$name"
type = "pv"
kernel = "/lab/vmlinux"
ramdisk = "/lab/initrd.img"
extra = "root=/dev/xvda console=hvc0 lab.role=dd lab.name=$name lab.ip=$ip"
memory = $memory
vcpus = 1
cpus = "$DD_CPU"
driver_domain = 1
disk = [ "phy:/dev/vdb,xvda,r" ]
pci = [ "$bdf" ]
CFG
    fi
    rm -f "$CONSOLE_DIR/guest-$name.log" # xenconsoled appends to a log of the same name
    t=$(now)
    xl create "/tmp/$name.cfg"
    echo "DD_CREATE_SECONDS=$(since "$t")"
    ddid=$(xl domid "$name")
    devd_serves() { [ -n "$(xenstore-read "/local/domain/$ddid/data/iovm/devd" 2>/dev/null)" ]; }
    wait_for 240 "driver domain $name's xl devd to serve (data/iovm/devd; console: $CONSOLE_DIR/guest-$name.log)" \
      devd_serves || {
      tail -20 "$CONSOLE_DIR/guest-$name.log" >&2
      exit 1
    }
    grep -a "lab-dd: br0 up\|iovm-init: br0 up" "$CONSOLE_DIR/guest-$name.log" || true
    grep -aq "no eth0\|has no network interface" "$CONSOLE_DIR/guest-$name.log" && {
      echo "passed-through NIC not found in $name" >&2
      exit 1
    }
    echo "DD_READY_SECONDS=$(since "$t")"
    echo "DD_DOMID=$(xl domid "$name")"
    echo "DD_MEMORY_MIB=$memory"
    echo "DD_PCPU=$DD_CPU"
    ;;
  dd-exec)
    # Runs COMMANDS in the domain's console shell (its hvc0 shell, through the console pty that
    # xenconsoled serves) and prints their output, read back from the console log.
    [ $# -eq 3 ] || {
      echo "$usage" >&2
      exit 2
    }
    name=$2 log=$CONSOLE_DIR/guest-$2.log
    id=$(xl domid "$name")
    tty=$(xenstore-read "/local/domain/$id/console/tty")
    mark=$RANDOM$RANDOM
    # The shell echoes the input line; the markers are printed by printf, so only its output matches.
    printf '\nprintf "LAB-%%s-%%s\\n" BEGIN %s; %s; printf "LAB-%%s-%%s\\n" END %s\n' "$mark" "$3" "$mark" >"$tty"
    wait_for 60 "LAB-END-$mark in $log" grep -aq "LAB-END-$mark" "$log" || {
      tail -20 "$log" >&2
      exit 1
    }
    # Unanchored: bash writes terminal escapes (bracketed paste off) in front of a command's first line;
    # the echoed input has "BEGIN $mark", never "BEGIN-$mark".
    tr -d '\r' <"$log" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' | sed -n "/LAB-BEGIN-$mark/,/LAB-END-$mark/p" | sed '1d;$d'
    ;;
  dd-cpu)
    # CPU seconds the domain has used (xl list's Time(s)).
    [ $# -eq 2 ] || {
      echo "$usage" >&2
      exit 2
    }
    xl list "$2" | awk 'NR == 2 { print $6 }'
    ;;
  guest-up)
    [ $# -eq 6 ] || {
      echo "$usage" >&2
      exit 2
    }
    name=$2 dd=$3 ip=$4 target=$5 secs=$6
    cat >"/tmp/$name.cfg" <<CFG
name = "$name"
type = "pv"
kernel = "/lab/vmlinux"
ramdisk = "/lab/guest-initrd.img"
extra = "console=hvc0 lab.ip=$ip lab.iperf=$target lab.secs=$secs"
memory = 256
vcpus = 1
cpus = "$GUEST_CPU"
vif = [ "backend=$dd,bridge=br0,script=iovm-vif" ]
CFG
    rm -f "$CONSOLE_DIR/guest-$name.log"
    t=$(now)
    xl create "/tmp/$name.cfg"
    echo "GUEST_CREATE_SECONDS=$(since "$t")"
    gid=$(xl domid "$name") ddid=$(xl domid "$dd")
    be=/local/domain/$ddid/backend/vif/$gid/0
    state_is_4() { [ "$(xenstore-read "$be/state")" = 4 ]; }
    wait_for 120 "$be/state = 4" state_is_4 || {
      xenstore-ls -f "$be" >&2 || true
      exit 1
    }
    echo "VIF_CONNECTED_SECONDS=$(since "$t")"
    echo "GUEST_DOMID=$gid"
    echo "VIF_BACKEND=$be"
    echo "GUEST_PCPU=$GUEST_CPU"
    echo "VIF_STATE=$(xenstore-read "$be/state")"
    echo "VIF_HOTPLUG_STATUS=$(xenstore-read "$be/hotplug-status" 2>/dev/null || echo none)"
    ;;
  guest-iperf)
    [ $# -eq 3 ] || {
      echo "$usage" >&2
      exit 2
    }
    name=$2 secs=$3 log=$CONSOLE_DIR/guest-$2.log
    wait_for "$secs" "LAB-IPERF-END in $log" console_has "$name" "LAB-IPERF-END" || {
      tail -20 "$log" >&2
      exit 1
    }
    # The JSON between the markers (console lines end in \r).
    tr -d '\r' <"$log" | sed -n '/^LAB-IPERF-BEGIN$/,/^LAB-IPERF-END/p' | sed '1d;$d'
    tr -d '\r' <"$log" | grep '^LAB-IPERF-END' | grep -q 'rc=0'
    ;;
  down)
    [ $# -ge 2 ] || {
      echo "$usage" >&2
      exit 2
    }
    bdf=$2
    shift 2
    rc=0
    for d in "$@"; do
      if xl domid "$d" >/dev/null 2>&1; then xl destroy "$d" || echo "(xl destroy $d returned non-zero)" >&2; fi
    done
    for d in "$@"; do if xl domid "$d" >/dev/null 2>&1; then
      echo "$d still exists" >&2
      rc=1
    fi; done
    if xl pci-assignable-list | grep -q "$bdf"; then xl pci-assignable-remove -r "$bdf" || rc=1; fi
    if xl pci-assignable-list | grep -q "$bdf"; then
      echo "$bdf still assignable" >&2
      rc=1
    fi
    exit $rc
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
