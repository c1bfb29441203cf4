# compare-config.awk -- compare what a fragment requested with the .config
# that real kconfig made of it, and explain each difference.
#
# kconfig itself drops a requested CONFIG_X=y silently when a dependency is
# unmet (it warns only about overrides, malformed lines, invalid values and
# selects of symbols with unmet dependencies), and never says why a
# requested-off symbol is on.
# This prints the verdict per symbol with the reason, from the index that
# kconfig-index.awk writes and a small evaluator of Kconfig expressions
# (tristate logic, =/!=/</<=/>/>=, $(macros) count as y).
#
# Usage:  awk -v reqf=R -v cfgf=C -v idxf=I -v summf=S -v strict=0|1
#             -v karch=x86_64 -f compare-config.awk R C I
# Input:  R  requested symbols, "SYM<TAB>value" (value n = "is not set"),
#            as fragment-requests.awk writes them, in fragment order;
#         C  the resulting .config;  I  the index (kconfig-index.awk).
# Output: stdout: for each requested symbol that differs, in request order,
#           "FAIL   CONFIG_X=v requested, got ..." + "    reason: ..." lines
#           (requested on: missing or another value), or
#           "REPORT CONFIG_X requested off, but is CONFIG_X=v" + "    forced
#           by: ..." lines (requested off, ended up on);
#         S: the summary line "kconfig: N requested on, N present; N
#           requested off, N forced on".
# Exit:   1 if any FAIL (or, with strict=1, any REPORT), else 0.
# Tests: Kernels/test-awk (fixtures under Kernels/tests/compare-config/).
function tri(v) { return v == "y" ? 2 : v == "m" ? 1 : 0 }
function val(s) { return (s in cfg) ? cfg[s] : "n" }
function shown(s,   v) { v = val(s); return s "=" v }
# --- tiny Kconfig expression evaluator (tristate logic) ---
function tokenize(e,   c, n, t) {
    n = 0
    while (length(e) > 0) {
        c = substr(e, 1, 1)
        if (c ~ /[ \t]/) { e = substr(e, 2); continue }
        if (substr(e, 1, 2) ~ /^(&&|\|\||!=|<=|>=)$/) { t = substr(e, 1, 2); e = substr(e, 3) }
        else if (c ~ /[()!=<>]/) { t = c; e = substr(e, 2) }
        else if (c == "\"") { match(e, /^"[^"]*"/); t = substr(e, 1, RLENGTH); e = substr(e, RLENGTH + 1); if (RLENGTH < 1) { t = e; e = "" } }
        else if (substr(e, 1, 2) == "$(") { t = "$MACRO"; match(e, /^\$\([^)]*\)/); e = substr(e, (RLENGTH > 0 ? RLENGTH : length(e)) + 1) }
        else { match(e, /^[A-Za-z0-9_.x-]+/); if (RLENGTH < 1) RLENGTH = 1; t = substr(e, 1, RLENGTH); e = substr(e, RLENGTH + 1) }
        tok[++n] = t
    }
    ntok = n; pos = 1
}
function peek() { return pos <= ntok ? tok[pos] : "" }
function strval(t) {
    if (t ~ /^"/) { gsub(/"/, "", t); return t }
    if (t == "y" || t == "m" || t == "n") return t
    if (t in defined) { t = val(t); gsub(/"/, "", t); return t }   # .config quotes strings
    return t
}
# "0x1f" -> 31 by hand: gawk (unless --posix) reads "0x1f" + 0 as 0, mawk as 31
function num(s,   neg, v, i) {
    neg = sub(/^-/, "", s)
    if (s !~ /^0x/) return neg ? -(s + 0) : s + 0
    v = 0
    for (i = 3; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", tolower(substr(s, i, 1))) - 1
    return neg ? -v : v
}
function atomtri(t) {
    if (t == "$MACRO") return 2
    if (t == "y" || t == "m" || t == "n") return tri(t)
    if (t ~ /^"/) return 0
    return (t in defined) ? tri(val(t)) : 0
}
function cmp(a, op, b,   x, y, r) {
    x = strval(a); y = strval(b)
    if (x ~ /^-?(0x)?[0-9a-fA-F]+$/ && y ~ /^-?(0x)?[0-9a-fA-F]+$/ && op != "=" && op != "!=") { x = num(x); y = num(y) }
    if (op == "=") r = (x == y); else if (op == "!=") r = (x != y)
    else if (op == "<") r = (x < y); else if (op == "<=") r = (x <= y)
    else if (op == ">") r = (x > y); else r = (x >= y)
    return r ? 2 : 0
}
function p_or(   v, w) { v = p_and(); while (peek() == "||") { pos++; w = p_and(); if (w > v) v = w }; return v }
function p_and(   v, w) { v = p_un(); while (peek() == "&&") { pos++; w = p_un(); if (w < v) v = w }; return v }
function p_un(   t, v, op) {
    t = peek()
    if (t == "!") { pos++; return 2 - p_un() }
    if (t == "(") { pos++; v = p_or(); if (peek() == ")") pos++; return v }
    pos++
    op = peek()
    if (op ~ /^(=|!=|<|<=|>|>=)$/) { pos++; return cmp(t, op, tok[pos++]) }
    return atomtri(t)
}
function evalx(e) { if (e == "") return 2; tokenize(e); return p_or() }
function syms_in(e,   n, i, out, s, seen) {
    tokenize(e); out = ""; seen = ","
    for (i = 1; i <= ntok; i++) { s = tok[i]; if ((s in defined) && index(seen, "," s ",") == 0) { seen = seen s ","; out = out (out == "" ? "" : ", ") shown(s) } }
    return out
}
function hint(e,   i, s, out, seen) {
    tokenize(e); out = ""; seen = ","
    for (i = 1; i <= ntok; i++) {
        s = tok[i]
        if (!(s in defined) || val(s) != "n" || index(seen, "," s ",") > 0) continue
        seen = seen s ","
        if ((s in req) && want[s] == "n") out = out "; " s " is requested off in the fragment"
        else if (s in req) out = out "; " s " is requested on but did not survive either (see its own FAIL)"
        else out = out "; " s " is not requested (add CONFIG_" s "=y?)"
    }
    return out
}
function explain_missing(s,   i, j, n, f, any, defs, met, nm, d, k, sel) {
    if (!(s in defined)) { print "    reason: " s " is not defined in any Kconfig of this tree for ARCH=" karch " (typo, renamed or arch-specific symbol)"; return }
    any = 0
    for (k = 1; k <= ndef[s]; k++) {
        n = split(defline[s, k], f, "\t")
        nm = 0
        for (j = 7; j < n; j += 2) {
            if (evalx(f[j]) == 0) {
                nm++; any = 1
                print "    reason: unmet dependency \"" f[j] "\" (" f[j+1] ", for " s " at " f[3] ") -- " syms_in(f[j]) hint(f[j])
            }
        }
        if (nm == 0) {
            if (f[5] == 0) {
                sel = selectors(s)
                print "    reason: " s " (" f[3] ") has no prompt; it is only set by select/default" (sel == "" ? " and nothing enabled selects it" : "; selectors: " sel)
                any = 1
            } else if (f[6] != "" && evalx(f[6]) == 0) {
                print "    reason: prompt of " s " only visible if \"" f[6] "\" (" f[3] ") -- " syms_in(f[6]) hint(f[6]); any = 1
            }
        }
    }
    if (!any) {
        if (want[s] == "m" && val("MODULES") == "n") print "    reason: =m requested but MODULES is off (use =y)"
        else if (val(s) != "n") print "    reason: got " s "=" val(s) " (type/range/choice: Kconfig chose a different value)"
        else print "    reason: dependencies look met; possibly a choice member or value rejected -- inspect with make menuconfig"
    }
}
function selectors(s,   i, out, f) {
    out = ""
    for (i = 1; i <= nsel[s] && i <= 6; i++) {
        split(selline[s, i], f, "\t")
        out = out (out == "" ? "" : ", ") f[3] "=" val(f[3]) (f[5] != "" ? " (if " f[5] ")" : "") " [" f[4] " at " f[6] "]"
    }
    if (nsel[s] > 6) out = out ", ... and " (nsel[s] - 6) " more"
    return out
}
function explain_forced(s,   i, f, n, k, any, v, out) {
    any = 0
    for (i = 1; i <= nsel[s]; i++) {
        split(selline[s, i], f, "\t")
        if (val(f[3]) != "n" && evalx(f[5]) > 0) {
            print "    forced by: " f[4] " from " f[3] "=" val(f[3]) " (" f[6] ")" ((f[3] in want && want[f[3]] != "n") ? " -- " f[3] " is requested on" : "")
            any = 1
        }
    }
    if (any) return
    for (k = 1; k <= ndef[s]; k++) {
        n = split(defline[s, k], f, "\t")
        out = ""
        for (i = 1; i <= ndflt[s]; i++) { split(dfltline[s, i], v, "\t"); if (evalx(v[4]) > 0) { out = "default " v[3] (v[4] != "" ? " if " v[4] : "") " (" v[5] ")"; break } }
        if (f[5] == 0) { print "    forced by: " s " has no prompt (not user-settable); value comes from " (out == "" ? "its default" : out); any = 1 }
        else if (f[6] != "" && evalx(f[6]) == 0) { print "    forced by: prompt only visible if \"" f[6] "\" (" syms_in(f[6]) "), so Kconfig uses " (out == "" ? "its default" : out); any = 1 }
    }
    if (!any) print "    forced by: (could not tell; run make menuconfig and search for " s ")"
}
BEGIN { FS = "\t" }
FILENAME == reqf { want[$1] = $2; order[++nreq] = $1; req[$1] = 1; next }
FILENAME == cfgf {
    if ($0 ~ /^CONFIG_[A-Za-z0-9_]+=/) { i = index($0, "="); cfg[substr($0, 8, i - 8)] = substr($0, i + 1) }
    next
}
FILENAME == idxf {
    if ($1 == "D") { defined[$2] = 1; defline[$2, ++ndef[$2]] = $0 }
    else if ($1 == "S") { nsel[$2]++; selline[$2, nsel[$2]] = $0 }
    else if ($1 == "V") { ndflt[$2]++; dfltline[$2, ndflt[$2]] = $0 }
    next
}
END {
    non = 0; npres = 0; noff = 0; nforced = 0; nfail = 0
    for (i = 1; i <= nreq; i++) {
        s = order[i]; w = want[s]
        if (s in done) continue
        done[s] = 1
        if (w != "n") {
            non++
            if (val(s) == w) npres++
            else {
                nfail++
                print "FAIL   CONFIG_" s "=" w " requested, got " (val(s) == "n" ? "not set" : "CONFIG_" s "=" val(s))
                explain_missing(s)
            }
        } else {
            noff++
            if (val(s) != "n") {
                nforced++
                print "REPORT CONFIG_" s " requested off, but is CONFIG_" s "=" val(s)
                explain_forced(s)
            }
        }
    }
    printf "kconfig: %d requested on, %d present; %d requested off, %d forced on\n", non, npres, noff, nforced > summf
    exit (nfail > 0) ? 1 : (strict && nforced > 0) ? 1 : 0
}
