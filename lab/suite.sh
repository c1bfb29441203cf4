# The integration suites' harness (lab/test, lab/test-apply, lab/test-monitor). Source it after lib.sh;
# do not run it. Kept apart from lib.sh, which lab/build hashes into its image cache key: a change to the
# harness does not rebuild the lab's images.
# shellcheck shell=bash
# shellcheck disable=SC2034 # IMAGE, LAB and others are for the suites that source this file

# ---- Integration suites (lab/test, lab/test-apply, lab/test-monitor) ---------------------------------
# A suite is a list of named sections of checks. It registers them (suite_section, suite_checks), calls
# suite_begin with its arguments, sets up (suite_iovm_build, suite_build, suite_iovm_wait, suite_boot,
# suite_install_iovm), writes each section as `if suite_run KEY; then ...; fi` and ends with suite_finish,
# which prints the stage times, the figures and last "N passed, M failed" (CI and scripts grep that line)
# and exits non-zero when a check failed. lab/harness-selftest exercises all of this without a lab.
# Sections are `if` blocks, not functions: their code runs as top-level code does under errexit (a function
# whose last `cond && cmd` is false would return 1 and end the suite).
LAB=$LAB_DIR
REPO=$(cd "$LAB_DIR/.." && pwd)
SWIFT_BIN=${SWIFT_BIN:-/opt/swift/usr/bin}
IOVM_SCRATCH=$REPO/.build-lab # the suites' release build, apart from the developers' .build
IOVM=$IOVM_SCRATCH/release/iovm

# Sections in the order they were registered; by key: name, needed sections, owed checks, whether the
# filter selected it, whether suite_run (or a give_up) got to it.
suite_names=() suite_keys=()
declare -gA suite_name_of=() suite_needs=() suite_owed=() suite_on=() suite_visited=()
keep=0 restart=0 suite_lab_started=0 suite_figures_title=figures
passed=0 failed=0 times=() figures=() iperf_pids=()
# The section running (suite_run's; "-" before the first), each section's counts and each figure's section: after a
# stall, the run again keeps those of the sections it does not run again.
suite_current="" suite_stall_done=0 figure_keys=()
suite_exec=("$0") # how the suite runs itself again (before its options)
suite_no_retry="" # set (to why) by a suite that cannot run again after a stall: the stall fails it
suite_in_cleanup=0 suite_cleaned=0
declare -gA suite_passed_in=() suite_failed_in=()

ok() {
  passed=$((passed + 1))
  suite_passed_in[${suite_current:--}]=$((${suite_passed_in[${suite_current:--}]:-0} + 1))
  echo "PASS  $1"
}
bad() {
  failed=$((failed + 1))
  suite_failed_in[${suite_current:--}]=$((${suite_failed_in[${suite_current:--}]:-0} + 1))
  echo "FAIL  $1${2:+: $2}"
}
check() {
  local name=$1
  shift
  if "$@"; then ok "$name"; else bad "$name"; fi
}
figure() {
  figures+=("$1")
  figure_keys+=("${suite_current:--}")
  echo "FIGURE $1"
}
# A command in dom0 (DOM0_TIMEOUT seconds, default 600).
dom0() { "$LAB_DIR/run" --timeout "${DOM0_TIMEOUT:-600}" "$@"; }
# host_snapshot [RUN]: what "the host as it was" means to the suites: xl list's names, the assignable NICs, the cpupools
# and iovm's xenstore tags (without the empty directories any apply leaves); RUN (default dom0) runs it in a dom0.
# shellcheck disable=SC2120 # its argument is optional
host_snapshot() {
  # shellcheck disable=SC2016 # expanded in dom0
  "${1:-dom0}" 'xl list | awk "NR>1 {print \$1}" | sort; echo --; xl pci-assignable-list | sort; echo --; xl cpupool-list -c | sort; echo --; xenstore-ls -f /local/domain/0/iovm 2>/dev/null | grep -v " = \"\"\$" | sort'
}
stage_time() { times+=("$(printf '%-44s %s' "$1" "$2")"); }

# suite_section NAME KEY [NEED...]: section NAME (what "== NAME" prints and --filter matches), KEY to the
# suite; NEED... are the keys of the sections it cannot run without: a filter that selects it runs them too.
suite_section() {
  suite_names+=("$1")
  suite_keys+=("$2")
  suite_name_of[$2]=$1
  suite_needs[$2]="${*:3}"
}
# suite_checks KEY CHECK...: the checks section KEY prints; a give_up before it ran counts them failed.
suite_checks() {
  local key=$1
  shift
  suite_owed[$key]=$(printf '%s\n' "$@")
}
suite_usage() {
  local key need needs
  echo "usage: lab/$SUITE [--keep] [--restart] [--filter REGEX]"
  echo "  --keep          leave the lab running afterwards"
  echo "  --restart       stop a lab that is already running (maybe someone else's) instead of refusing to start"
  echo "  --filter REGEX  run only the sections whose name matches REGEX (bash =~, default \$LAB_FILTER), with"
  echo "                  the sections they need; every other section prints 'SKIP  <section>' and counts nothing"
  echo "sections:"
  for key in "${suite_keys[@]}"; do
    needs=""
    for need in ${suite_needs[$key]}; do needs+="${needs:+; }${suite_name_of[$need]}"; done
    echo "  ${suite_name_of[$key]}${needs:+   (needs: $needs)}"
  done
}

# suite_begin NAME ARG...: lab/NAME's options (suite_usage), the sections the filter selects, then, unless no
# section is selected: refuses a lab already running without --restart, sets the cleanup trap.
suite_begin() {
  SUITE=$1
  SUITE_ID=${1#test-} # test, apply, monitor: its log files and saved consoles
  shift
  local filter=${LAB_FILTER:-} rc=0
  while [ $# -gt 0 ]; do
    case $1 in
      --keep) keep=1 ;;
      --restart) restart=1 ;;
      --filter)
        if [ $# -lt 2 ]; then
          suite_usage >&2
          exit 2
        fi
        filter=$2
        shift
        ;;
      --filter=*) filter=${1#--filter=} ;;
      -h | --help)
        suite_usage
        exit 0
        ;;
      *)
        suite_usage >&2
        exit 2
        ;;
    esac
    shift
  done
  # shellcheck disable=SC2319 # [[ =~ ]] itself says 2 for a pattern that is no regular expression
  [[ "" =~ $filter ]] || rc=$?
  if [ $rc = 2 ]; then
    echo "lab/$SUITE: --filter '$filter' is not a regular expression bash understands" >&2
    exit 2
  fi
  suite_t0=$(date +%s)
  if [ -n "${SUITE_RETRY_KEYS:-}" ]; then
    suite_retry_begin
  else
    suite_select "$filter"
  fi
  if [ ${#suite_on[@]} -eq 0 ]; then
    # Nothing to run: no build, no boot (LAB_FILTER may name another suite's sections).
    echo "lab/$SUITE: no section matches '$filter'" >&2
    suite_finish
  fi
  if [ -n "$(lab_qemu_pid)" ] && [ $restart = 0 ]; then
    lab_die "a lab is already running (pid $(lab_qemu_pid)), maybe someone else's: lab/stop it or pass --restart"
  fi
  trap suite_cleanup EXIT
  # An interrupted suite (Ctrl-C, CI's timeout) ends: its EXIT trap cleans up and does not run it again.
  trap 'suite_stall_done=1; exit 130' INT
  trap 'suite_stall_done=1; exit 143' TERM
  lab_need_packages jq iperf3
  mkdir -p "$LAB_VAR"
}
# suite_select REGEX [KEY...]: marks the sections whose name matches REGEX (none when it is empty and KEY... are given)
# and sections KEY..., and what they need, transitively.
suite_select() {
  local i key need more=1 regex=$1
  shift
  for key in "${suite_keys[@]}"; do
    for need in ${suite_needs[$key]}; do
      [ -n "${suite_name_of[$need]+set}" ] || lab_die "lab/$SUITE: section $key needs $need, which is no section"
    done
  done
  if [ $# -eq 0 ] || [ -n "$regex" ]; then
    for i in "${!suite_keys[@]}"; do
      if [[ ${suite_names[i]} =~ $regex ]]; then suite_on[${suite_keys[i]}]=1; fi
    done
  fi
  for key in "$@"; do
    [ -n "${suite_name_of[$key]+set}" ] || lab_die "lab/$SUITE: $key is no section"
    suite_on[$key]=1
  done
  while ((more)); do
    more=0
    for key in "${!suite_on[@]}"; do
      for need in ${suite_needs[$key]}; do
        if [ -z "${suite_on[$need]:-}" ]; then
          suite_on[$need]=1
          more=1
        fi
      done
    done
  done
}
# suite_selected KEY: whether section KEY runs (for setup that only some sections need).
suite_selected() {
  [ -n "${suite_name_of[$1]+set}" ] || lab_die "lab/$SUITE: $1 is no section"
  [ -n "${suite_on[$1]:-}" ]
}
# suite_run KEY: whether section KEY runs: prints "== NAME" if it does, "SKIP  NAME" if not. A stall of dom0 in the
# section before is handled first (suite_stall_check).
suite_run() {
  suite_stall_check
  suite_visited[$1]=1
  if suite_selected "$1"; then
    suite_section_time
    echo "== ${suite_name_of[$1]}"
    suite_current=$1
    suite_section_t0=$(date +%s)
  else
    echo "SKIP  ${suite_name_of[$1]}"
    return 1
  fi
}
# suite_rest [WHY]: the sections no suite_run reached: SKIP for those not selected; with WHY (a give_up),
# the checks the others owe count as failed.
suite_rest() {
  local why=${1:-} i key c
  for i in "${!suite_keys[@]}"; do
    key=${suite_keys[i]}
    [ -z "${suite_visited[$key]:-}" ] || continue
    suite_visited[$key]=1
    if [ -z "${suite_on[$key]:-}" ]; then
      echo "SKIP  ${suite_names[i]}"
    elif [ -n "$why" ]; then
      while IFS= read -r c; do
        [ -z "$c" ] || bad "$c" "not run: $why"
      done <<<"${suite_owed[$key]:-}"
    else
      bad "${suite_names[i]}" "never run (the suite has no 'if suite_run $key')"
    fi
  done
}
# give_up WHY [CHECK...]: after a failure that makes the rest impossible: CHECK... and the checks of the
# selected sections not run yet count as failed ("not run: WHY"); the suite finishes (exit 1).
give_up() {
  local why=$1 c
  shift
  for c in "$@"; do bad "$c" "not run: $why"; done
  suite_rest "$why"
  suite_finish
}
# suite_section_time: the wall time of the section that ran last, as a stage time ("section: NAME"), once: where a CI run's
# minutes go (its budget is 60).
suite_section_time() {
  [ -n "$suite_current" ] && [ -n "${suite_section_t0:-}" ] || return 0
  stage_time "section: ${suite_name_of[$suite_current]:0:34}" "$(($(date +%s) - suite_section_t0)) s"
  suite_section_t0=""
}
# suite_finish: stage times, figures, "N passed, M failed"; exits 1 if a check failed, else 0. Called from the EXIT trap
# (a stall seen there: give_up), it does the cleanup itself first: an exit in the trap ends it.
suite_finish() {
  suite_stall_check
  suite_rest
  suite_section_time
  stage_time "total lab/$SUITE" "$(($(date +%s) - suite_t0)) s"
  echo "---- stage times ----"
  printf '%s\n' "${times[@]}"
  if [ ${#figures[@]} -gt 0 ]; then
    echo "---- $suite_figures_title ----"
    printf '%s\n' "${figures[@]}"
  fi
  echo "$passed passed, $failed failed"
  [ "$suite_in_cleanup" = 0 ] || suite_cleanup_lab
  [ "$failed" -eq 0 ] || exit 1
  exit 0
}

# ---- dom0 stalls ----------------------------------------------------------------------------------------
# Under TCG, dom0 has stopped answering anything (its lab agent, its sshd) a few times in many runs, with its vCPUs
# halted and Xen idle (docs/results: sessions 19, 24, 27, 31), never twice in one run. lab/run marks such a boot hung
# (lab_boot_hung). The suite then says so, with what Xen's debug keys printed, boots the lab again and runs once more
# from the section it was in, with the sections those need. The last line counts each check once: the first run's
# in the sections not run again, and the run again's. A second stall fails the suite.

# suite_stall_check: at a section's start, the suite's end and its exit: when the boot is hung and a section ran,
# suite_stall_retry (once; later calls in the same process do nothing).
suite_stall_check() {
  [ "$suite_stall_done" = 0 ] && [ -n "$suite_current" ] && lab_boot_hung || return 0
  suite_stall_done=1
  suite_stall_retry
}
# suite_stall_retry: the first stall: this suite again (exec, the same process) on the sections from the stalled one
# on that the filter selected (SUITE_RETRY_KEYS), with each section's counts and figures so far (LAB_VAR/SUITE_ID-prior;
# suite_retry_begin keeps those of the sections it does not run). The second: the stalled section fails, and the suite
# gives up.
suite_stall_retry() {
  local key=$suite_current name=${suite_name_of[$suite_current]} log i on=0 keys=() args=(--restart)
  log=$({ find "$LAB_VAR" -maxdepth 1 -name 'hang-*.log' -newer "$LAB_SHARE/ready" -printf '%T@ %p\n' 2>/dev/null || true; } | sort -n | tail -1 | cut -d' ' -f2-)
  if [ -n "$log" ]; then
    echo "STALL  $name: dom0 stopped answering (neither its lab agent nor its sshd); what Xen's debug keys printed, in $log:"
    lab_hang_summary "$log" | sed 's/^/  /'
  else
    echo "STALL  $name: dom0 stopped answering (neither its lab agent nor its sshd)"
  fi
  if [ -n "${SUITE_STALLED:-}" ]; then
    echo "STALL  the second in this suite (the first: $SUITE_STALLED): not run again"
    bad "$name" "dom0 stopped answering again (the first stall: $SUITE_STALLED)"
    give_up "dom0 stopped answering twice"
  fi
  if [ -n "$suite_no_retry" ]; then
    echo "STALL  lab/$SUITE does not run again after a stall: $suite_no_retry"
    bad "$name" "dom0 stopped answering"
    give_up "dom0 stopped answering"
  fi
  for i in "${!suite_keys[@]}"; do
    [ "${suite_keys[i]}" = "$key" ] && on=1
    if [ $on = 1 ] && [ -n "${suite_on[${suite_keys[i]}]:-}" ]; then keys+=("${suite_keys[i]}"); fi
  done
  echo "STALL  lab/$SUITE boots the lab again and runs once more from this section: ${keys[*]}, with the sections they need; their checks so far are set aside"
  {
    for key in "${suite_keys[@]}"; do
      [ -z "${suite_passed_in[$key]:-}${suite_failed_in[$key]:-}" ] || echo "count $key ${suite_passed_in[$key]:-0} ${suite_failed_in[$key]:-0}"
    done
    for i in "${!figures[@]}"; do
      [ "${figure_keys[i]}" = - ] || echo "figure ${figure_keys[i]} ${figures[i]}" # setup's are the run again's own
    done
  } >"$LAB_VAR/$SUITE_ID-prior"
  suite_iperf_stop
  [ "$keep" = 0 ] || args+=(--keep)
  trap - EXIT
  # With execfail and without errexit (bash 5.2 exits on a failed exec under errexit, even with ||), exec returns only
  # when it failed.
  shopt -s execfail
  set +e
  # shellcheck disable=SC2093 # see above
  SUITE_RETRY_KEYS="${keys[*]}" SUITE_T0="$suite_t0" SUITE_STALLED="$name, $(date -u +%H:%M:%S)" exec "${suite_exec[@]}" "${args[@]}"
  set -e
  trap suite_cleanup EXIT
  bad "$name" "dom0 stopped answering, and lab/$SUITE could not run again (${suite_exec[*]})"
  give_up "dom0 stopped answering"
}
# suite_retry_begin: in the run after a stall: the sections SUITE_RETRY_KEYS with what they need; of the first run
# (LAB_VAR/SUITE_ID-prior), the counts and figures of the sections not run again; its start time.
suite_retry_begin() {
  local line what key rest p f kept_p=0 kept_f=0
  # shellcheck disable=SC2086 # one word per key
  suite_select "" $SUITE_RETRY_KEYS
  suite_t0=${SUITE_T0:-$suite_t0}
  # Lines "count KEY PASSED FAILED" and "figure KEY TEXT" (TEXT as it was, spaces and all).
  while IFS= read -r line; do
    what=${line%% *} rest=${line#* }
    key=${rest%% *} rest=${rest#* }
    [ -z "${suite_on[$key]:-}" ] || continue
    case $what in
      count)
        read -r p f <<<"$rest"
        passed=$((passed + p)) failed=$((failed + f)) kept_p=$((kept_p + p)) kept_f=$((kept_f + f))
        suite_passed_in[$key]=$p suite_failed_in[$key]=$f
        ;;
      figure)
        figures+=("$rest")
        figure_keys+=("$key")
        ;;
    esac
  done <"$LAB_VAR/$SUITE_ID-prior"
  echo "== lab/$SUITE once more after dom0 stalled in $SUITE_STALLED; kept from the first run: $kept_p passed and $kept_f failed checks of the sections not run again"
}

# The EXIT trap: host-side iperf3 servers go; a lab this suite booted has its consoles saved when a check
# failed and is stopped unless --keep. A lab the suite did not boot is left alone (it may be someone else's).
suite_cleanup() {
  suite_in_cleanup=1
  suite_stall_check
  suite_cleanup_lab
}
# suite_cleanup_lab: the trap's work after the stall check (once).
suite_cleanup_lab() {
  [ "$suite_cleaned" = 0 ] || return 0
  suite_cleaned=1
  suite_iperf_stop
  if [ "$suite_lab_started" = 1 ]; then
    [ "$failed" -eq 0 ] || lab_save_consoles "$SUITE_ID"
    [ "$keep" = 1 ] || "$LAB/stop" >/dev/null 2>&1 || true
  fi
}

# suite_iovm_build [PRODUCT...]: the release build of iovm (static Swift stdlib: it runs in dom0), then of
# PRODUCT... (for the host), into IOVM_SCRATCH, in the background while the lab images build; its output
# goes to LAB_VAR/iovm-SUITE-build.log, whose last line is "exit=STATUS". suite_iovm_wait collects it.
# shellcheck disable=SC2120 # its arguments are optional
suite_iovm_build() {
  iovm_build_log=$LAB_VAR/iovm-$SUITE_ID-build.log
  iovm_build_t0=$(date +%s)
  iovm_build_pid=""
  # The build's C headers, installed here in the foreground: lab/build's apt-get may run while the build does.
  lab_need_packages libxen-dev libvirt-dev pkg-config
  if [ ! -x "$SWIFT_BIN/swift" ]; then
    echo "no swift at $SWIFT_BIN" >"$iovm_build_log"
    return 0
  fi
  # Retried when a source changed under the build (developers share this work tree).
  # shellcheck disable=SC2094 # the retry reads the log its own earlier try wrote
  (
    cd "$REPO" || exit
    for _ in 1 2 3; do
      rc=0
      # No RUNPATH $ORIGIN (--disable-local-rpath): a static-stdlib iovm loads nothing from its own directory, and
      # ld.so looked there for libm and libc first, 17 failed system calls at every start (issue 16).
      PATH=$SWIFT_BIN:$PATH timeout 2400 swift build -c release --static-swift-stdlib --disable-local-rpath \
        --product iovm --scratch-path "$IOVM_SCRATCH" || rc=$?
      for product in "$@"; do
        [ $rc -ne 0 ] || PATH=$SWIFT_BIN:$PATH timeout 2400 swift build -c release \
          --product "$product" --scratch-path "$IOVM_SCRATCH" || rc=$?
      done
      [ $rc -ne 0 ] && grep -q 'was modified during the build' "$iovm_build_log" && {
        echo "retrying the build"
        continue
      }
      break
    done
    echo "exit=$rc"
  ) >"$iovm_build_log" 2>&1 &
  iovm_build_pid=$!
}
# suite_iovm_wait: waits for suite_iovm_build (once; the wait ends the stage "iovm build"); true when iovm
# was built.
suite_iovm_wait() {
  if [ -n "${iovm_build_pid:-}" ]; then
    wait "$iovm_build_pid" || true
    iovm_build_pid=""
    stage_time "iovm build (swift, in parallel)" "$(($(date +%s) - iovm_build_t0)) s"
  fi
  grep -q '^exit=0$' "${iovm_build_log:-/dev/null}" 2>/dev/null
}
# suite_build: "== build", lab/build (the lab's images) as a stage; a failure gives up the suite.
suite_build() {
  local t
  echo "== build"
  t=$(date +%s)
  if ! "$LAB/build"; then
    bad "build" "lab/build failed"
    give_up "the build failed"
  fi
  stage_time "build (lab/build)" "$(($(date +%s) - t)) s"
}
# suite_image: IMAGE, dom0's path of iovm's minimal IOVM image (lab/image of the built iovm), as a stage;
# lab/image's stderr in LAB_VAR/image-build-SUITE.log (image_log). False (IMAGE empty) when it failed.
suite_image() {
  local t
  image_log=$LAB_VAR/image-build-$SUITE_ID.log
  t=$(date +%s)
  IMAGE=$("$LAB/image" "$IOVM" 2>"$image_log") || {
    IMAGE=""
    return 1
  }
  stage_time "minimal IOVM image (iovm image build)" "$(($(date +%s) - t)) s"
}
# suite_boot [SCHED]: "== boot": stops the lab already running (suite_begin let it be only with --restart),
# boots the lab with Xen's scheduler SCHED if given (LAB_XEN_OPTS still replaces the whole command line),
# as a stage. QEMU's hard limit is the suite's (LAB_TEST_QEMU_TIMEOUT, 45 min) unless --keep, which gets
# lab/boot's own (LAB_QEMU_TIMEOUT, 4 h). Returns lab/boot's status: the suite says what failed.
# shellcheck disable=SC2120 # its arguments are optional
suite_boot() {
  local t limit=${LAB_TEST_QEMU_TIMEOUT:-2700}
  echo "== boot"
  suite_lab_started=1
  if [ -n "$(lab_qemu_pid)" ]; then
    echo "--restart: stopping the lab already running"
    "$LAB/stop" || return
  fi
  if [ -n "${1:-}" ]; then export LAB_XEN_OPTS="${LAB_XEN_OPTS:-$LAB_XEN_DEFAULT_OPTS sched=$1}"; fi
  if [ "$keep" = 1 ]; then limit=${LAB_QEMU_TIMEOUT:-14400}; fi
  t=$(date +%s)
  "$LAB/boot" --wait "${LAB_BOOT_WAIT:-600}" --timeout-qemu "$limit" || return
  stage_time "boot to ready" "$(($(date +%s) - t)) s"
}
# suite_install_iovm: iovm into dom0's own (tmpfs) file system: exec of the binary (85 MB once, 21 MB now) over the 9p share
# costs ~1 s per command under TCG (0.2 s from tmpfs), which would swamp the suites' timings. dom0's image store:
# the minimal image (IMAGE, when suite_image made it) copied into dom0's own store (suite_local_image), else the
# share's images/, where lab/image puts them.
suite_install_iovm() {
  # One chain, so its status is the first failure's even where errexit is off (`if !`, `||`).
  cp "$IOVM" "$LAB_SHARE/bin/iovm.new" \
    && "$LAB/run" 'install -m 0755 /mnt/lab/bin/iovm.new /usr/local/bin/iovm && rm -f /mnt/lab/bin/iovm.new /mnt/lab/bin/iovm' >/dev/null \
    || return
  if [ -n "${IMAGE:-}" ]; then
    suite_local_image && return
    echo "could not copy $IMAGE into dom0's store: dom0's store is the share's images/"
  fi
  # The share's images/, unless dom0 has a store of its own already (an earlier suite_local_image of this boot).
  "$LAB/run" 'mkdir -p /var/lib/iovm && { [ -d /var/lib/iovm/images ] && [ ! -L /var/lib/iovm/images ] || ln -sfn /mnt/lab/images /var/lib/iovm/images; }' >/dev/null
}
# suite_local_image: copies the minimal image (IMAGE, /mnt/lab/images/<hash>) into dom0's own store,
# /var/lib/iovm/images/<hash> (dom0's tmpfs: a host's local disk), and sets IMAGE_LOCAL to it. libxc reads an IOVM's
# kernel through mmap: from the 9p share each IOVM's xl create took 3.5-4.1 s, from tmpfs 1.6-1.9 s (session 33),
# 2 s of the share's in every IOVM's boot, and not in the stock IOVM's (its kernel is in the root image).
# Returns non-zero, with dom0's store as it was, when IMAGE is not a share image's path or the copy fails.
suite_local_image() {
  local image=${IMAGE:-} hash
  IMAGE_LOCAL=""
  image=${image%/}
  hash=${image##*/}
  # lab/image prints /mnt/lab/images/<16 hex digits>: nothing else goes into dom0's command line.
  [[ $image == "/mnt/lab/images/$hash" && $hash =~ ^[0-9a-f]{16}$ ]] || return 1
  # Copied beside the store first; a store that was the share's link becomes a directory only once the copy is whole.
  # /var/lib/iovm may not be there yet: a filtered run (check 4 alone) has run no iovm command in this dom0.
  # shellcheck disable=SC2016 # $d, $h and $t are dom0's
  "$LAB/run" 'd=/var/lib/iovm/images h='"$hash"' t=/var/lib/iovm/.image-'"$hash"'
    if [ ! -L $d ] && [ -f $d/$h/manifest.json ]; then exit 0; fi
    mkdir -p /var/lib/iovm && rm -rf $t && cp -a '"$image"' $t || { rm -rf $t; exit 1; }
    if [ -L $d ]; then rm $d; fi
    mkdir -p $d && rm -rf $d/$h && mv $t $d/$h' >/dev/null \
    || return
  IMAGE_LOCAL=/var/lib/iovm/images/$hash
}

# suite_iperf_server PORT SECS LOG [ARG...]: an iperf3 server (iperf3 -s ARG...) on the host's 127.0.0.1:PORT,
# for at most SECS; suite_iperf_stop or the cleanup ends it.
suite_iperf_server() {
  local port=$1 secs=$2 log=$3
  shift 3
  timeout "$secs" iperf3 -s "$@" -B 127.0.0.1 -p "$port" >"$log" 2>&1 &
  iperf_pids+=($!)
}
# suite_iperf_servers SECS PREFIX [NIC...]: one per NIC (default: all) on the host port its traffic is
# forwarded to (LAB_NIC<n>_HOSTPORT), logging to LAB_VAR/PREFIX<n>.log.
suite_iperf_servers() {
  local secs=$1 prefix=$2 n port
  shift 2
  local nics=("$@")
  [ ${#nics[@]} -gt 0 ] || mapfile -t nics < <(seq "$LAB_NIC_COUNT")
  for n in "${nics[@]}"; do
    port=LAB_NIC${n}_HOSTPORT
    suite_iperf_server "${!port}" "$secs" "$LAB_VAR/$prefix$n.log"
  done
}
suite_iperf_stop() {
  local p
  for p in "${iperf_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  iperf_pids=()
}

# On a failed suite: every domain's console log (xenconsoled's, in dom0) and `xl dmesg` into
# lab/var/consoles-SUITE/, and the last lines of each printed, so a CI log shows what the domains said.
lab_save_consoles() {
  local suite=$1 dir=$LAB_VAR/consoles-$1 f
  [ -n "$(lab_qemu_pid)" ] || return 0
  rm -rf "$dir" "$LAB_SHARE/consoles-$suite"
  "$LAB_DIR/run" --timeout 60 "mkdir -p /mnt/lab/consoles-$suite && cp /var/log/xen/console/*.log /mnt/lab/consoles-$suite/ 2>/dev/null;
    xl dmesg >/mnt/lab/consoles-$suite/xl-dmesg.txt 2>&1; xl list >/mnt/lab/consoles-$suite/xl-list.txt 2>&1; true" >/dev/null 2>&1 || return 0
  mv "$LAB_SHARE/consoles-$suite" "$dir" 2>/dev/null || return 0
  echo "---- consoles saved in $dir ----"
  for f in "$dir"/guest-*.log; do
    [ -e "$f" ] || continue
    echo "-- $(basename "$f") (last 15 lines)"
    tr -d '\r' <"$f" | tail -15 | sed 's/^/   /'
  done
}
