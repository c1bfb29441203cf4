# Shared settings and helpers for the lab scripts. Source it; do not run it.
# shellcheck shell=bash

# shellcheck disable=SC2034 # the settings below are for the scripts that source this file
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The directories are named apart from the commands lab/build and lab/run. LAB_BUILD and LAB_RUN, their
# names before, are still read for one release.
LAB_CACHE=${LAB_CACHE:-${LAB_BUILD:-$LAB_DIR/cache}} # build cache (lab/cache)
# A second lab beside the first (two Xen hosts for a topology that spans them): LAB_INSTANCE=2 gives it its own
# runtime directory (lab/var-2), dom0 ssh port and NIC host ports (below). Instance 1, the default, is the lab.
LAB_INSTANCE=${LAB_INSTANCE:-1}
case "$LAB_INSTANCE" in
  [1-9]) ;;
  *)
    printf '[lab] ERROR: LAB_INSTANCE=%s: 1 to 9\n' "$LAB_INSTANCE" >&2
    exit 2
    ;;
esac
if [ "$LAB_INSTANCE" = 1 ]; then _var=$LAB_DIR/var; else _var=$LAB_DIR/var-$LAB_INSTANCE; fi
LAB_VAR=${LAB_VAR:-${LAB_RUN:-$_var}} # runtime state (lab/var; lab/var-N for LAB_INSTANCE=N)
unset _var
LAB_QEMU_NAME=iovm-lab # QEMU's -name: iovm-lab, iovm-lab-N for LAB_INSTANCE=N
[ "$LAB_INSTANCE" = 1 ] || LAB_QEMU_NAME=iovm-lab-$LAB_INSTANCE
LAB_SHARE=$LAB_VAR/share # 9p share, mounted in dom0 at /mnt/lab
LAB_PIDFILE=$LAB_VAR/qemu.pid
LAB_SERIAL=$LAB_VAR/serial.log           # Xen + dom0 console (com1 / hvc0)
LAB_CONSOLE_SOCKET=$LAB_VAR/console.sock # the console's input (lab_xen_keys)
LAB_READY_MSG="xenstored running, agent ready"
LAB_SSH_KEY=$LAB_VAR/ssh/id_ed25519 # the host's key into dom0 (made by lab/boot, never committed)

# Host-side packages the lab needs (installed by lab_need_packages).
LAB_HOST_PACKAGES="qemu-system-x86 qemu-utils xen-hypervisor-4.17-amd64 linux-image-amd64 debootstrap
  busybox-static cpio e2fsprogs xz-utils iperf3 socat kmod procps openssh-client"

# shellcheck source=hostshape.env
. "$LAB_DIR/hostshape.env"
# Instance N > 1 (LAB_INSTANCE) forwards dom0's ssh from LAB_SSH_HOSTPORT + N - 1 and NIC n's traffic to
# LAB_NIC<n>_HOSTPORT + 10 (N - 1), the flows into its guests from LAB_NIC<n>_FLOWPORT + 10 (N - 1), so two labs run side
# by side.
if [ "$LAB_INSTANCE" != 1 ]; then
  LAB_SSH_HOSTPORT=$((LAB_SSH_HOSTPORT + LAB_INSTANCE - 1))
  for _n in $(seq "$LAB_NIC_COUNT"); do
    _port=LAB_NIC${_n}_HOSTPORT
    declare -g "$_port=$((${!_port} + 10 * (LAB_INSTANCE - 1)))"
    _port=LAB_NIC${_n}_FLOWPORT
    declare -g "$_port=$((${!_port} + 10 * (LAB_INSTANCE - 1)))"
  done
  unset _n _port
fi

# The NICs' mode (hostshape.env): LAB_NIC_ROOT_PORTS=1 puts each e1000 behind its own pcie-root-port. Set it
# for lab/boot and for every script that uses the BDFs. lab/boot records the mode it booted in (LAB_VAR/
# nic-root-ports; lab_nic_root_ports_running) and refuses a running lab of the other mode. LAB_NIC<n>_SLOT (hex)
# is NIC n's slot on the root bus in both modes: the NIC's own by default, its root port's in root-port mode.
LAB_NIC_ROOT_PORTS=${LAB_NIC_ROOT_PORTS:-0}
case "$LAB_NIC_ROOT_PORTS" in
  0 | 1) ;;
  *)
    printf '[lab] ERROR: LAB_NIC_ROOT_PORTS=%s: 0 or 1\n' "$LAB_NIC_ROOT_PORTS" >&2
    exit 2
    ;;
esac
for _n in $(seq "$LAB_NIC_COUNT"); do
  _bdf=LAB_NIC${_n}_BDF _port=LAB_NIC${_n}_PORT_BDF
  _slot=${!_bdf#*:*:}
  declare -g "LAB_NIC${_n}_SLOT=${_slot%.*}"
  if [ "$LAB_NIC_ROOT_PORTS" = 1 ]; then declare -g "$_bdf=${!_port}"; fi
done
if [ "$LAB_NIC_ROOT_PORTS" = 1 ]; then LAB_NIC_BDFS=$LAB_NIC_PORT_BDFS; fi
unset _n _bdf _port _slot

# Xen's command line (lab/boot; LAB_XEN_OPTS replaces it): serial console, dom0 with its memory and 2 vCPUs.
# Xen's default scheduler is credit2; suites 2 and 3 add sched=credit (suite_boot credit), the paper's.
# bootscrub=0: background scrubbing of free RAM slowed every step of a fresh boot 3-10x under TCG.
LAB_XEN_DEFAULT_OPTS="console=com1 com1=115200,8n1 dom0_mem=${LAB_DOM0_MEM_MIB}M,max:${LAB_DOM0_MEM_MIB}M dom0_max_vcpus=2 loglvl=all guest_loglvl=all noreboot bootscrub=0"

lab_log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
lab_die() {
  printf '[lab] ERROR: %s\n' "$*" >&2
  exit 1
}

# Install any missing Debian packages (apt-get update once per process, only if needed).
lab_need_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  lab_log "installing: ${missing[*]}"
  if [ -z "${LAB_APT_UPDATED:-}" ]; then
    apt-get update -q >&2
    LAB_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# The host kernel that serves as dom0 and PV guest kernel (newest installed linux-image).
lab_kernel_version() {
  local v
  v=$(find /boot -maxdepth 1 -name 'vmlinuz-*-amd64' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -1)
  [ -n "$v" ] || lab_die "no /boot/vmlinuz-*-amd64 (is linux-image-amd64 installed?)"
  echo "$v"
}

# Print the URI of the host's configured apt source for suite $1 (deb822 or one-line format).
lab_apt_mirror() {
  local suite=$1 f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk -v suite="$suite" '
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { if (uri != "" && ok && deb) { print uri; exit } uri=""; ok=0; deb=0; next }
      /^URIs:/   { uri=$2 }
      /^Types:/  { for (i=2;i<=NF;i++) if ($i=="deb") deb=1 }
      /^Suites:/ { for (i=2;i<=NF;i++) if ($i==suite) ok=1 }
      END { if (uri != "" && ok && deb) print uri }' "$f" | head -1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    awk -v suite="$suite" '$1=="deb" { i=2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i+1)==suite) print $i }' "$f"
  done
}

# Pid of our running QEMU, or nothing. Verifies the pid really is our qemu.
lab_qemu_pid() {
  local pid
  [ -f "$LAB_PIDFILE" ] || return 0
  pid=$(cat "$LAB_PIDFILE" 2>/dev/null) || return 0
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "qemu-system-x86_64 .*$LAB_PIDFILE"; then
    echo "$pid"
  fi
}

# The NIC mode the running lab booted in (0 or 1, LAB_NIC_ROOT_PORTS), or nothing when no lab runs.
lab_nic_root_ports_running() {
  [ -n "$(lab_qemu_pid)" ] || return 0
  cat "$LAB_VAR/nic-root-ports" 2>/dev/null || echo 0
}

# ---- the host -> dom0 path for libvirt (xen+ssh://) ------------------------------------------------
# dom0 runs sshd on its management NIC (hostshape.env LAB_MGMT_*), reached at 127.0.0.1:LAB_SSH_HOSTPORT;
# lab/boot makes LAB_SSH_KEY when missing and dom0 takes its public key from the share at boot.
# libvirtd does not run at boot (nothing changes for xl/libxl users): start it on demand with
# `lab/run 'lab-libvirt start'` (lab/files/lab-libvirt; or lab_libvirt_start), then:
#   virsh -c "$(lab_libvirt_uri)" list --all

# Make LAB_SSH_KEY when missing and put its public key into the share (dom0: /mnt/lab/ssh/authorized_keys).
lab_ssh_key() {
  mkdir -p "$(dirname "$LAB_SSH_KEY")" "$LAB_SHARE/ssh"
  chmod 700 "$(dirname "$LAB_SSH_KEY")"
  if [ ! -s "$LAB_SSH_KEY" ] || [ ! -s "$LAB_SSH_KEY.pub" ]; then
    rm -f "$LAB_SSH_KEY" "$LAB_SSH_KEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C "iovm-lab@$(hostname)" -f "$LAB_SSH_KEY" >/dev/null
  fi
  cp "$LAB_SSH_KEY.pub" "$LAB_SHARE/ssh/authorized_keys"
}

# The libvirt URI of dom0's libxl driver, from the host: ssh with the lab's key, as root, the host key
# not checked (it is the image's, new at each lab/build), no tty (fails instead of prompting).
lab_libvirt_uri() {
  printf 'xen+ssh://root@127.0.0.1:%s/system?keyfile=%s&no_verify=1&no_tty=1\n' "$LAB_SSH_HOSTPORT" "$LAB_SSH_KEY"
}

# ssh into dom0 as root (lab_ssh [--timeout SECS] 'CMD'); host keys go to lab/var/ssh/known_hosts, not ~/.ssh.
lab_ssh() {
  local bound=()
  if [ "${1:-}" = --timeout ]; then
    bound=(timeout "$2")
    shift 2
  fi
  "${bound[@]}" ssh -i "$LAB_SSH_KEY" -p "$LAB_SSH_HOSTPORT" -o BatchMode=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile="$(dirname "$LAB_SSH_KEY")/known_hosts" -o LogLevel=ERROR root@127.0.0.1 "$@"
}

# lab_xen_keys KEYS: types Xen's debug KEYS on the console (Ctrl-A three times switches its input from dom0 to Xen
# and back), a second apart; Xen prints what they dump to LAB_SERIAL. Works while dom0 answers nothing.
# The switch is checked: when Xen says its input went to dom0 (an earlier switch back was cut short), it switches again.
# What the console prints meanwhile is read and dropped (QEMU's serial stalls on a socket nobody reads), and is in
# LAB_SERIAL through the chardev's log.
lab_xen_keys() {
  local keys=$1 i from
  [ -S "$LAB_CONSOLE_SOCKET" ] || return 1
  from=$(stat -c %s "$LAB_SERIAL" 2>/dev/null || echo 0)
  {
    printf '\001\001\001'
    sleep 1
    if tail -c +"$((from + 1))" "$LAB_SERIAL" 2>/dev/null | grep -a -q "Serial input to DOM0"; then
      printf '\001\001\001'
      sleep 1
    fi
    for ((i = 0; i < ${#keys}; i++)); do
      printf '%s' "${keys:i:1}"
      sleep 1
    done
    printf '\001\001\001'
    sleep 1
  } | lab_console_feed 60
}
# lab_console_feed SECS: what stdin says, typed on the lab's console (its input socket), for at most SECS; what the
# console prints meanwhile is dropped here (it is in LAB_SERIAL through the chardev's log).
lab_console_feed() { timeout "$1" socat - "UNIX-CONNECT:$LAB_CONSOLE_SOCKET" >/dev/null 2>&1; }

# lab_boot_hung: whether lab/run marked this boot hung (LAB_VAR/hung, newer than the share's ready, which the agent
# writes at boot): dom0 answered neither its lab agent nor its sshd. No boot (no ready) is not a hung one.
lab_boot_hung() { [ -f "$LAB_SHARE/ready" ] && [ "$LAB_VAR/hung" -nt "$LAB_SHARE/ready" ]; }
# lab_dom0_answers: whether dom0 answers now: its lab agent claims a no-op within 30 s (a busy dom0 may take longer to
# run it; the claim shows the agent's loop runs), or else its sshd runs one within 40 s. A probe the agent never
# claimed is taken back.
lab_dom0_answers() {
  local id i
  id=probe-$(date +%s%N)-$$
  printf 'true\n' >"$LAB_SHARE/cmd/.$id.tmp" && mv "$LAB_SHARE/cmd/.$id.tmp" "$LAB_SHARE/cmd/$id.sh" || return 1
  for i in $(seq 150); do
    if [ -f "$LAB_SHARE/out/$id.rc" ]; then
      rm -f "$LAB_SHARE/out/$id.sh" "$LAB_SHARE/out/$id.out" "$LAB_SHARE/out/$id.err" "$LAB_SHARE/out/$id.rc"
      return 0
    fi
    sleep 0.2
  done
  [ -e "$LAB_SHARE/cmd/$id.sh" ] || return 0 # claimed: lab/boot clears out/ of what it leaves
  rm -f "$LAB_SHARE/cmd/$id.sh"
  lab_ssh --timeout 40 true >/dev/null 2>&1
}

# lab_dom0_sysrq KEYS: types dom0's magic SysRq KEYS on its console (hvc0 reads Ctrl-O, then the key), a second apart,
# while the console's input is dom0's (lab_xen_keys switches it back). dom0's kernel prints what they dump to
# LAB_SERIAL, if it still handles its console's interrupt (lab/boot enables every SysRq function: sysrq_always_enabled).
lab_dom0_sysrq() {
  local keys=$1 i
  [ -S "$LAB_CONSOLE_SOCKET" ] || return 1
  {
    for ((i = 0; i < ${#keys}; i++)); do
      printf '\017%s' "${keys:i:1}"
      sleep 1
    done
    sleep 1
  } | lab_console_feed 30
}

# lab_hang_report [--no-mark]: why dom0 does not answer the lab agent, to stderr: whether its sshd answers, and Xen's own view
# (debug keys q: domains and their vCPUs, r: run queues, 0: dom0's vCPU registers and stacks, d: each CPU's
# registers and Xen's stack). The console lines they printed are kept as LAB_VAR/hang-N.log. When sshd does not answer
# either, it marks the boot hung (LAB_VAR/hung): lab/run then refuses at once; with --no-mark the caller decides.
lab_hang_report() {
  local n=1 from ssh_said mark=1
  [ "${1:-}" != --no-mark ] || mark=0
  while [ -e "$LAB_VAR/hang-$n.log" ]; do n=$((n + 1)); done
  if ssh_said=$(lab_ssh --timeout 40 'cat /proc/uptime /proc/loadavg; ps -eo pid,stat,etime,wchan:24,args --sort=-pcpu | head -12' 2>&1); then
    echo "lab/run: dom0's sshd answers; its uptime, load and busiest processes:" >&2
  else
    # Both ways in are dead: later commands of this boot would each wait out their timeout (600 s in the suites).
    if [ $mark = 1 ]; then
      touch "$LAB_VAR/hung"
      echo "lab/run: dom0's sshd does not answer either; the lab's later commands fail at once until lab/boot:" >&2
    else
      echo "lab/run: dom0's sshd does not answer either:" >&2
    fi
  fi
  head -16 <<<"$ssh_said" | sed 's/^/  /' >&2
  from=$(stat -c %s "$LAB_SERIAL" 2>/dev/null || echo 0)
  if ! lab_xen_keys qr0dei; then
    echo "lab/run: no console socket ($LAB_CONSOLE_SOCKET): Xen's view not taken" >&2
    return 0
  fi
  sleep 3
  lab_dom0_sysrq w || true
  sleep 3
  tail -c +"$((from + 1))" "$LAB_SERIAL" | tr -d '\r' >"$LAB_VAR/hang-$n.log"
  echo "lab/run: Xen's debug keys q r 0 d e i and dom0's SysRq w printed $(wc -l <"$LAB_VAR/hang-$n.log") lines ($LAB_VAR/hang-$n.log):" >&2
  lab_hang_summary "$LAB_VAR/hang-$n.log" | sed 's/^/  /' >&2
}
# lab_hang_summary LOG: of Xen's debug keys' dump in LOG (lab_hang_report's), dom0's vCPU states, each CPU's current
# vCPU, dom0's vCPUs' RIP and stacks (lab_dom0_stacks), then what would tell a dom0 that waits for an interrupt Xen
# never delivered from one whose programs wait for something else: dom0's event channels with an event pending
# (key e: "[p/m/s]", p=1), and its IRQs with an interrupt in flight or their event channel pending or masked (key i:
# "in-flight=N d0:PIRQ(EPM)", - where clear).
lab_hang_summary() {
  # Each domain's vCPUs (key q), one line each: "domain N VCPUk: CPUc [has=..] ... pause_count=.. pause_flags=..".
  awk '
    /VCPU information and callbacks for/ { d = $NF; sub(/:$/, "", d) } # by $NF: the serial has doubled letters of "domain"
    /^\(XEN\) +VCPU[0-9]+: CPU/ { sub(/^\(XEN\) +/, ""); sub(/ +$/, ""); v = "domain " d " " $0; next }
    /^\(XEN\) +pause_count/ && v != "" { sub(/^\(XEN\) +/, ""); print v " " $0; v = "" }
  ' "$1"
  grep -E "^\(XEN\) CPU\[[0-9]+\] current=" "$1" || true
  lab_dom0_stacks "$1" || true
  awk '
    /Event channel information for/ && $NF == "0:" { dom0 = 1; seen = 1; next }
    /Event channel information for|IRQ information:/ { dom0 = 0 }
    dom0 && /\[1\// { sub(/^\(XEN\) +/, ""); pend = pend (pend == "" ? "" : "; ") $0 }
    /^\(XEN\) +IRQ: .* d0:/ && (/in-flight=[1-9]/ || /d0: *[0-9]+\([^)]*[A-Z][^)]*\)/) { sub(/^\(XEN\) +/, ""); irq = irq (irq == "" ? "" : "; ") $0 }
    /^\(XEN\) IRQ information:/ { irqs = 1 }
    END {
      if (seen) print "dom0 event channels with an event pending: " (pend == "" ? "none" : pend)
      if (irqs) print "dom0 IRQs in flight, pending or masked: " (irq == "" ? "none" : irq)
    }' "$1"
  # SysRq w (lab_dom0_sysrq): dom0's tasks blocked in D state, each with the first functions of its call trace.
  awk '
    function flush() { if (task != "") print "dom0 task blocked: " task (fns == "" ? "" : ": " fns); task = ""; fns = ""; n = 0 }
    /sysrq: Show Blocked State/ { shown = 1; next }
    !shown { next }
    / task:/ { flush(); any = 1; t = $0; sub(/.* task:/, "task:", t); gsub(/ +/, " ", t); task = t; next }
    /<\/TASK>/ { flush(); next }
    task != "" && n < 8 {
      for (i = 1; i <= NF; i++) if ($i ~ /^[A-Za-z_][A-Za-z0-9_.]*\+0x[0-9a-f]+\/0x[0-9a-f]+$/ && $(i - 1) != "?") {
        f = $i; sub(/\+0x.*/, "", f); fns = fns (fns == "" ? "" : " < ") f; n++
      }
    }
    END {
      flush()
      if (!shown) print "dom0 printed nothing for SysRq w (its kernel does not handle its console, or the key was not typed)"
      else if (!any) print "dom0 answered SysRq w: no task blocked"
    }
  ' "$1"
}

# lab_dom0_stacks LOG: each dom0 vCPU Xen's '0' key dumped in LOG: its RIP and the kernel text addresses on its stack,
# named from dom0's /proc/kallsyms (LAB_VAR/kallsyms, taken by lab/boot); the stack's are candidates, not frames.
lab_dom0_stacks() {
  local map=$LAB_VAR/kallsyms.sorted
  if [ -s "$LAB_VAR/kallsyms" ]; then LC_ALL=C sort "$LAB_VAR/kallsyms" >"$map"; else : >"$map"; fi
  awk -v map="$map" '
    function name(a,   lo, hi, mid) {
      if (n == 0 || a < addr[1]) return a
      lo = 1; hi = n
      while (lo < hi) { mid = int((lo + hi + 1) / 2); if (addr[mid] <= a) lo = mid; else hi = mid - 1 }
      return sym[lo] "(" a ")"
    }
    BEGIN { while ((getline line < map) > 0) { split(line, f, " "); n++; addr[n] = f[1]; sym[n] = f[3] } }
    /Dumping Dom0 vcpu#/ { if (v != "") print v ": " rip "; stack: " st; v = $5; rip = ""; st = ""; instack = 0; next }
    v == "" { next }
    /^\(XEN\) RIP: / && rip == "" { a = $3; gsub(/.*\[<|>\].*/, "", a); rip = "RIP " name(a); next }
    /Guest stack trace/ { instack = 1; next }
    instack && /^\(XEN\)    [0-9a-f]/ {
      for (i = 2; i <= NF; i++) if ($i ~ /^ffffffff[8c]/) st = st (st == "" ? "" : " < ") name($i)
      next
    }
    instack { print v ": " rip "; stack: " st; v = ""; instack = 0 }
    END { if (v != "") print v ": " rip "; stack: " st }
  ' "$1"
}

# Start libvirtd in the running lab's dom0 (idempotent) and wait until the host's virsh reaches it.
lab_libvirt_start() {
  lab_need_packages libvirt-clients
  "$LAB_DIR/run" --timeout 300 'lab-libvirt start' >&2 || return 1
  virsh -c "$(lab_libvirt_uri)" version >/dev/null
}
