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
#   data/iovm/counters/<key>   "<kind> <if> <rx_bytes> <tx_bytes> <rx_packets> <tx_packets>"
#       <key>: the interface name <if> with '.' as '_' (xenstore paths take no dots); <kind>: nic | vif;
#       the numbers: /sys/class/net/<if>/statistics/{rx,tx}_{bytes,packets}. One value per interface,
#       so dom0 reads an interface with one xenstore request (and this agent writes one node, not six).
#       A physical NIC's tx_bytes/tx_packets come from its root qdisc (`tc -s qdisc`) when it has one:
#       drivers such as e1000/e1000e count a TSO frame's bytes as segments x the skb's linear part,
#       which over-counts when that part holds payload (netback's skbs carry 128 bytes there: +4% in
#       the lab); the qdisc counts each segment's real headers (qdisc_pkt_len). Without tc, or with
#       noqueue, the driver's counters are used.
#   data/iovm/agent/seq                               1, 2, 3, ... (one per write)
#   data/iovm/agent/interval                          INTERVAL
#   data/iovm/agent/bits                              the kernel's long width (32/64), if getconf knows
#   data/iovm/agent/uptime                            the IOVM's /proc/uptime when the counters were read
#                                                     (the midpoint of a reading before and one after)
#
# A physical NIC is an interface with a device link whose bus is not xen (netfront), and whose name
# is not vif*; a vif is any vif<domid>.<n> (not the -emu tap of an HVM guest). Interfaces that go
# away (a guest destroyed) are removed from xenstore. COUNT stops after COUNT writes (0: forever).
#
# For tests: SYSFS_NET (default /sys/class/net), XENSTORE_WRITE, XENSTORE_RM, TC, IOVM_AGENT_TMP override
# the defaults.
#
# Processes per interval: tc (when it is installed) and xenstore-write; the wait between writes takes none
# where the shell's read has -t. Interface kinds are worked out again only when the set of names changes.

set -u
interval=1
count=0
while getopts i:n:h opt; do
  case $opt in
    i) interval=$OPTARG ;;
    n) count=$OPTARG ;;
    *)
      echo "usage: $0 [-i INTERVAL] [-n COUNT]" >&2
      exit 64
      ;;
  esac
done

net=${SYSFS_NET:-/sys/class/net}
write=${XENSTORE_WRITE:-xenstore-write}
remove=${XENSTORE_RM:-xenstore-rm}
tc=${TC:-tc}
prefix=data/iovm/counters
bits=$(getconf LONG_BIT 2>/dev/null) || bits=

# kind IF: prints nic or vif, or nothing for interfaces not counted (lo, bridges, netfront, taps).
kind() {
  case $1 in
    vif*-emu) return ;;
    vif*)
      echo vif
      return
      ;;
  esac
  [ -e "$net/$1/device" ] || return
  bus=$(readlink "$net/$1/device/subsystem" 2>/dev/null) || bus=
  case ${bus##*/} in
    xen | xen-backend) return ;;
  esac
  echo nic
}

seq=0
previous=
# root_qdiscs: sets qdiscs to "<dev> <sent bytes> <sent packets>" lines, one per device whose root qdisc
# counts (not noqueue). tc writes to a file that shell built-ins parse: tc is this agent's only process
# besides xenstore-write per interval (a fork+exec costs ~0.1 s under emulation, charged to the IOVM).
# Made by mktemp (no predictable name in a shared /tmp); one process, at start-up.
qfile=$(mktemp "${IOVM_AGENT_TMP:-${TMPDIR:-/tmp}}/iovm-agent-qdisc.XXXXXX") || qfile=${IOVM_AGENT_TMP:-${TMPDIR:-/tmp}}/iovm-agent-qdisc.$$
root_qdiscs() {
  qdiscs=
  "$tc" -s qdisc show >"$qfile" 2>/dev/null || return 0
  qdev=
  while read -r first second rest; do
    case $first in
      qdisc)
        qdev=
        [ "$second" = noqueue ] && continue
        case " $rest " in *" root "*) ;; *) continue ;; esac
        set -f
        # shellcheck disable=SC2086 # split the rest of the line into words
        set -- $rest
        set +f
        while [ $# -gt 1 ]; do
          [ "$1" = dev ] && qdev=$2 && break
          shift
        done
        ;;
      Sent)
        if [ -n "$qdev" ]; then
          set -f
          # shellcheck disable=SC2086 # split the rest of the line into words
          set -- $rest
          set +f
          [ "${1:-}" = bytes ] && [ "${3:-}" = pkt ] && qdiscs="$qdiscs$qdev $second $2
"
        fi
        qdev=
        ;;
    esac
  done <"$qfile"
}

# nap SECONDS: waits without a process where the shell's read takes -t (busybox ash, bash): on a pipe
# nobody writes to. Otherwise (dash) with sleep.
# shellcheck disable=SC3045 # read -t is probed for here, and used only where it works
(read -r -t 0 _ </dev/null) 2>/dev/null
if [ $? -le 1 ] && pause=$(mktemp -u "${TMPDIR:-/tmp}/iovm-agent.XXXXXX") && mkfifo "$pause" 2>/dev/null && exec 8<>"$pause"; then
  rm -f "$pause"
  # shellcheck disable=SC3045 # probed above
  nap() { read -r -t "$1" _ <&8; }
else
  nap() { sleep "$1"; }
fi
trap 'rm -f "$qfile"; exit 143' TERM INT

uptime_file=${PROC_UPTIME:-/proc/uptime}
cached_names=x
ifaces=
while :; do
  set --
  current=
  # The interfaces to count ("<ifname>/<kind>/<key>"), worked out again only when the set of names
  # changes: kind and key cost forks, and a busy IOVM runs forks slowly.
  names=
  for dir in "$net"/*; do [ -d "$dir/statistics" ] && names="$names ${dir##*/}"; done
  if [ "$names" != "$cached_names" ]; then
    ifaces=
    for ifname in $names; do
      k=$(kind "$ifname")
      [ -n "$k" ] || continue
      # xenstore path elements take only letters, digits and -/_@: vif3.0 is published as vif3_0.
      key=$(printf '%s' "$ifname" | tr -c 'A-Za-z0-9_@-' '_')
      ifaces="$ifaces $ifname/$k/$key"
    done
    cached_names=$names
  fi
  # The counters are read between two readings of the IOVM's clock, and stamped with their midpoint:
  # dom0 computes rates over these stamps (a busy IOVM publishes late, and rates over dom0's own
  # sampling times would come in bursts), so the stamp must be when the counters were read.
  before=
  read -r before _ 2>/dev/null <"$uptime_file" || true
  root_qdiscs
  for entry in $ifaces; do
    ifname=${entry%%/*} rest=${entry#*/}
    k=${rest%%/*} key=${rest#*/}
    dir=$net/$ifname
    rxb='' txb='' rxp='' txp=''
    read -r rxb 2>/dev/null <"$dir/statistics/rx_bytes" || true
    read -r txb 2>/dev/null <"$dir/statistics/tx_bytes" || true
    read -r rxp 2>/dev/null <"$dir/statistics/rx_packets" || true
    read -r txp 2>/dev/null <"$dir/statistics/tx_packets" || true
    if [ "$k" = nic ] && [ -n "$qdiscs" ]; then
      while read -r qdev qbytes qpackets; do
        [ "$qdev" = "$ifname" ] && {
          txb=$qbytes
          txp=$qpackets
          break
        }
      done <<QDISCS
$qdiscs
QDISCS
    fi
    # All four must be numbers (an interface vanishing mid-read is skipped this time).
    case "$rxb $txb $rxp $txp" in *[!0-9\ ]* | ' '* | *'  '* | *' ') continue ;; esac
    set -- "$@" "$prefix/$key" "$k $ifname $rxb $txb $rxp $txp"
    current="$current $key"
  done
  after=
  read -r after _ 2>/dev/null <"$uptime_file" || true
  seq=$((seq + 1))
  uptime=
  case "$before $after" in
    [0-9]*.[0-9][0-9]\ [0-9]*.[0-9][0-9])
      # In hundredths (/proc/uptime has two decimals; 1xx - 100 avoids octal with ".05"), no forks.
      mid=$(((${before%.*} * 100 + 1${before#*.} - 100 + ${after%.*} * 100 + 1${after#*.} - 100) / 2))
      frac=$((mid % 100))
      [ "$frac" -lt 10 ] && frac=0$frac
      uptime=$((mid / 100)).$frac
      ;;
  esac
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
  nap "$interval"
done
rm -f "$qfile"
