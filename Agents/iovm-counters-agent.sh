#!/bin/sh
# iovm-counters-agent: runs inside an IOVM (network driver domain) and publishes the traffic
# counters of its physical NICs and of the guests' vif backends to xenstore, where `iovm monitor`
# in dom0 reads them. Needs only busybox sh and xenstore-write/xenstore-rm (xen-utils).
#
#   iovm-counters-agent.sh [-i INTERVAL] [-n COUNT]
#
# Every INTERVAL seconds (default 1; fractions need a sleep that takes them, e.g. busybox with
# FANCY_SLEEP) it writes, with ONE xenstore-write call (one xenstore transaction, so dom0 never
# sees half an update), relative to this domain's own /local/domain/<domid>/:
#
#   data/iovm/counters/<key>/kind                     nic | vif   (<key>: <if> with '.' as '_')
#   data/iovm/counters/<key>/name                     <if>, the interface's real name
#   data/iovm/counters/<key>/{rx,tx}_{bytes,packets}  /sys/class/net/<if>/statistics/...
#   data/iovm/agent/seq                               1, 2, 3, ... (one per write)
#   data/iovm/agent/interval                          INTERVAL
#   data/iovm/agent/bits                              the kernel's long width (32/64), if getconf knows
#   data/iovm/agent/uptime                            the IOVM's /proc/uptime at this write (seconds)
#
# A physical NIC is an interface with a device link whose bus is not xen (netfront), and whose name
# is not vif*; a vif is any vif<domid>.<n> (not the -emu tap of an HVM guest). Interfaces that go
# away (a guest destroyed) are removed from xenstore. COUNT stops after COUNT writes (0: forever).
#
# For tests: SYSFS_NET (default /sys/class/net), XENSTORE_WRITE, XENSTORE_RM override the defaults.

set -u
interval=1
count=0
while getopts i:n:h opt; do
    case $opt in
        i) interval=$OPTARG ;;
        n) count=$OPTARG ;;
        *) echo "usage: $0 [-i INTERVAL] [-n COUNT]" >&2; exit 64 ;;
    esac
done

net=${SYSFS_NET:-/sys/class/net}
write=${XENSTORE_WRITE:-xenstore-write}
remove=${XENSTORE_RM:-xenstore-rm}
prefix=data/iovm/counters
bits=$(getconf LONG_BIT 2>/dev/null) || bits=

# kind IF: prints nic or vif, or nothing for interfaces not counted (lo, bridges, netfront, taps).
kind() {
    case $1 in
        vif*-emu) return ;;
        vif*) echo vif; return ;;
    esac
    [ -e "$net/$1/device" ] || return
    bus=$(readlink "$net/$1/device/subsystem" 2>/dev/null) || bus=
    case ${bus##*/} in
        xen|xen-backend) return ;;
    esac
    echo nic
}

seq=0
previous=
while :; do
    set --
    current=
    for dir in "$net"/*; do
        [ -d "$dir/statistics" ] || continue
        ifname=${dir##*/}
        k=$(kind "$ifname")
        [ -n "$k" ] || continue
        # xenstore path elements take only letters, digits and -/_@: vif3.0 is published as vif3_0.
        key=$(printf '%s' "$ifname" | tr -c 'A-Za-z0-9_@-' '_')
        set -- "$@" "$prefix/$key/kind" "$k" "$prefix/$key/name" "$ifname"
        for counter in rx_bytes tx_bytes rx_packets tx_packets; do
            value=
            read -r value 2>/dev/null < "$dir/statistics/$counter" || true
            [ -n "$value" ] && set -- "$@" "$prefix/$key/$counter" "$value"
        done
        current="$current $key"
    done
    seq=$((seq + 1))
    # The IOVM's own clock at this write: dom0 computes rates over these, not over its sampling times
    # (a busy IOVM publishes late, and rates over dom0's intervals would come in bursts).
    uptime=
    read -r uptime _ 2>/dev/null < "${PROC_UPTIME:-/proc/uptime}" || true
    set -- "$@" data/iovm/agent/seq "$seq" data/iovm/agent/interval "$interval"
    [ -n "$uptime" ] && set -- "$@" data/iovm/agent/uptime "$uptime"
    [ -n "$bits" ] && set -- "$@" data/iovm/agent/bits "$bits"
    "$write" "$@" || echo "iovm-counters-agent: $write failed" >&2
    for old in $previous; do
        case " $current " in
            *" $old "*) ;;
            *) "$remove" "$prefix/$old" || echo "iovm-counters-agent: $remove $prefix/$old failed" >&2 ;;
        esac
    done
    previous=$current
    [ "$count" -gt 0 ] && [ "$seq" -ge "$count" ] && break
    sleep "$interval"
done
