# kconfig-index.awk -- flatten a Linux Kconfig tree into a TSV index.
#
# Used by Kernels/check-kconfig to *explain* its results (the verdict itself
# always comes from real kconfig, `make allnoconfig`). Real kconfig does not
# say why a requested symbol vanished, and it has no flat dump of dependencies,
# so this walks `source`/`rsource`/`osource` recursively from the top-level
# Kconfig, tracking the dependencies that if/menu/choice blocks add.
#
# Usage:  awk -v srctree=DIR -v srcarch=x86 -v karch=x86_64 -f kconfig-index.awk
# Input:  none on stdin; reads srctree/Kconfig and whatever it sources, with
#         $(SRCARCH) -> srcarch and $(ARCH) -> karch substituted.
# Output: one record per line, TAB-separated:
#   D sym file:line type has_prompt prompt_cond  dep1 where1 dep2 where2 ...
#       type bool/tristate/string/int/hex or ?; has_prompt 0/1; prompt_cond
#       the prompt's "if" (empty if none); depN a dependency expression from
#       an enclosing if/menu/choice (whereN "if@file:line", "menu@file:line,
#       dependsline,...") or from the entry's own `depends on` (whereN
#       file:line); a symbol defined N times has N D records.
#   S target selector select|imply cond file:line
#   V sym default_value cond file:line      (default and def_bool/def_tristate)
# Tests: Kernels/test-awk (fixtures under Kernels/tests/kconfig-index/).
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
function norm(s) { gsub(/[ \t]+/, " ", s); return trim(s) }
function indent(s,   i, c, w) {
    w = 0
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == " ") w++; else if (c == "\t") w = w - w % 8 + 8; else break
    }
    return w
}
function strip_comment(s,   i, c, q) {
    q = 0
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\"") q = !q
        else if (c == "#" && !q) return substr(s, 1, i - 1)
    }
    return s
}
function flush(   i, out) {
    if (cursym == "") return
    out = "D\t" cursym "\t" curwhere "\t" curtype "\t" curprompt "\t" curpcond
    for (i = 1; i <= sn; i++) if (stk[i] != "") out = out "\t" stk[i] "\t" stkw[i]
    for (i = 1; i <= nd; i++) out = out "\t" dep[i] "\t" depw[i]
    print out
    cursym = ""; nd = 0
}
# "bool "Prompt text" if COND" -> sets curprompt/curpcond
function parse_prompt(rest,   r) {
    r = trim(rest)
    if (substr(r, 1, 1) != "\"") return
    r = substr(r, 2)
    if (match(r, /[^\\]"|^"/) == 0) return
    curprompt = 1
    r = trim(substr(r, RSTART + RLENGTH))
    if (r ~ /^if[ \t]/) curpcond = norm(substr(r, 3))
}
function splitcond(rest, parts,   p) {
    # "VALUE if COND" -> parts[1]=VALUE parts[2]=COND
    rest = trim(rest)
    p = index(rest, " if ")
    if (p == 0) { parts[1] = norm(rest); parts[2] = "" }
    else { parts[1] = norm(substr(rest, 1, p - 1)); parts[2] = norm(substr(rest, p + 4)) }
}
function parsefile(file,   line, nxt, kw, rest, where, lineno, inhelp, hind, ind, path, parts, block, dir) {
    lineno = 0; inhelp = 0; block = ""
    dir = file; sub(/\/[^\/]*$/, "", dir)
    while ((getline line < (srctree "/" file)) > 0) {
        lineno++
        gsub(/\$\(SRCARCH\)/, srcarch, line); gsub(/\$\(ARCH\)/, karch, line)
        while (line ~ /\\$/ && (getline nxt < (srctree "/" file)) > 0) {
            lineno++; line = substr(line, 1, length(line) - 1) " " nxt
        }
        if (inhelp) {
            if (line ~ /^[ \t]*$/) continue
            ind = indent(line)
            if (hind < 0) hind = ind
            if (ind >= hind && ind > 0) continue
            inhelp = 0
        }
        line = trim(strip_comment(line))
        if (line == "") continue
        kw = line; sub(/[ \t].*/, "", kw)
        rest = (length(line) > length(kw)) ? substr(line, length(kw) + 1) : ""
        where = file ":" lineno
        if (kw == "config" || kw == "menuconfig") {
            flush(); cursym = trim(rest); curwhere = where; curtype = "?"; curprompt = 0; curpcond = ""; nd = 0
            block = "config"
        } else if (kw == "help" || kw == "---help---") {
            inhelp = 1; hind = -1
        } else if (kw == "if") {
            flush(); block = ""; sn++; stk[sn] = norm(rest); stkw[sn] = "if@" where; stkk[sn] = "if"
        } else if (kw == "endif" || kw == "endmenu" || kw == "endchoice") {
            flush(); block = ""; if (sn > 0) sn--
        } else if (kw == "menu") {
            flush(); block = "menu"; sn++; stk[sn] = ""; stkw[sn] = "menu@" where; stkk[sn] = "menu"
        } else if (kw == "choice") {
            flush(); block = "menu"; sn++; stk[sn] = ""; stkw[sn] = "choice@" where; stkk[sn] = "choice"
        } else if (kw == "comment" || kw == "mainmenu") {
            flush(); block = "comment"
        } else if (kw ~ /^(o|r|or)?source$/) {
            flush(); block = ""
            path = trim(rest); gsub(/"/, "", path)
            if (kw ~ /^o?rsource$/) path = dir "/" path
            if (path ~ /\$\(/) continue
            if ((getline nxt < (srctree "/" path)) > 0) { close(srctree "/" path); parsefile(path) }
        } else if (kw == "depends") {
            sub(/^[ \t]*on[ \t]+/, "", rest); rest = norm(rest)
            if (block == "config") { nd++; dep[nd] = rest; depw[nd] = where }
            else if (block == "menu") { stk[sn] = (stk[sn] == "") ? rest : "(" stk[sn] ") && (" rest ")"; stkw[sn] = stkw[sn] "," lineno }
        } else if (block == "config") {
            if (kw ~ /^(bool|tristate|string|int|hex)$/) { curtype = kw; parse_prompt(rest) }
            else if (kw == "prompt") parse_prompt(rest)
            else if (kw == "def_bool" || kw == "def_tristate") {
                curtype = substr(kw, 5); splitcond(rest, parts)
                print "V\t" cursym "\t" parts[1] "\t" parts[2] "\t" where
            } else if (kw == "default") {
                splitcond(rest, parts); print "V\t" cursym "\t" parts[1] "\t" parts[2] "\t" where
            } else if (kw == "select" || kw == "imply") {
                splitcond(rest, parts); print "S\t" parts[1] "\t" cursym "\t" kw "\t" parts[2] "\t" where
            }
        }
    }
    flush()
    close(srctree "/" file)
}
BEGIN { sn = 0; parsefile("Kconfig") }
