# fragment-requests.awk -- what a Kconfig fragment asks for, one line per symbol.
#
# check-kconfig compares this list with the .config that kconfig made of the
# fragment (compare-config.awk). Later lines override earlier ones, as in
# Kconfig itself; a symbol keeps the position of its first mention.
#
# Usage:  awk -f fragment-requests.awk FRAGMENT...
# Input:  Kconfig fragment lines: "CONFIG_X=value" (leading and trailing
#         blanks ignored; an empty value is ignored) and "# CONFIG_X is not
#         set"; any other line is ignored.
# Output: "X<TAB>value" per symbol, value n for "is not set" (a value is cut
#         at its first TAB, since the output is TAB-separated).
# Tests: Kernels/test-awk (fixtures under Kernels/tests/fragment-requests/).
{
    if (match($0, /^[[:space:]]*CONFIG_[A-Za-z0-9_]+=/)) {
        sym = substr($0, 1, RLENGTH - 1)
        value = substr($0, RLENGTH + 1)
        sub(/[[:space:]]+$/, "", value)
        if (value == "") next
    } else if (match($0, /^[[:space:]]*#[[:space:]]*CONFIG_[A-Za-z0-9_]+ is not set/)) {
        sym = substr($0, 1, RLENGTH - length(" is not set"))
        value = "n"
    } else next
    sub(/^[^C]*CONFIG_/, "", sym)
    sub(/\t.*/, "", value)
    if (!(sym in want)) order[++n] = sym
    want[sym] = value
}
END { for (i = 1; i <= n; i++) print order[i] "\t" want[order[i]] }
