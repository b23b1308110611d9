#!/usr/bin/env bash
# Lint: clang-format and clang-tidy (Debian 12's, LLVM 14) with the repository's .clang-format and
# .clang-tidy. Prints every finding as file:line and exits non-zero if there is any.
#
# What is checked:
#   LINT_BASE=<rev>  the changes since the merge base of <rev> and HEAD, uncommitted edits and new
#                    untracked files included.
#   LINT_BASE=all    every tracked C++ file under src/ include/ tests/ bench/.
#   (unset)          origin/main if that ref exists, else HEAD~1 (the last commit and uncommitted
#                    edits), else all.
#   clang-format     LINT_FORMAT=lines (default): only the changed lines, so that touching a file
#                    does not demand reformatting the rest of it. LINT_FORMAT=files: whole changed
#                    files. With LINT_BASE=all, whole files.
#   clang-tidy       the .cpp files under src/ (tests and benchmarks are not tidied).
#                    LINT_TIDY=changed (default): the changed ones, or all of them when a header
#                    or .clang-tidy changed (a header's findings show through every includer).
#                    LINT_TIDY=all: every one. LINT_TIDY=off: none.
#                    Parsed with the GCC build's compile_commands.json from a configure-only build
#                    directory (LINT_BUILD_DIR, default build-lint; only the generated
#                    git_commit.hpp is built). Every enabled check is an error.
#
# CI (.ci/run) runs LINT_BASE=all LINT_TIDY=all: the tree is clang-formatted, so every file is
# checked whole (about 5 s), and clang-tidy runs on all of src/ (about 2 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh  # cmake, ninja and the libraries the configure step finds
# The two tools are not in install-deps.sh's list: only linting needs them.
need=()
for tool in clang-format clang-tidy; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
    echo "lint: installing ${need[*]} (Debian 12: LLVM 14)" >&2
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${need[@]}" >/dev/null
fi

cxx_regex='^(src|include|tests|bench)/.*\.(cpp|hpp|h|cc)$'
tidy_regex='^src/.*\.cpp$'
format_mode=${LINT_FORMAT:-lines}
tidy_mode=${LINT_TIDY:-changed}
build_dir=${LINT_BUILD_DIR:-build-lint}

base=${LINT_BASE:-}
if [ -z "$base" ]; then
    if git rev-parse -q --verify origin/main >/dev/null; then
        base=origin/main
    elif git rev-parse -q --verify HEAD~1 >/dev/null; then
        base=HEAD~1
    else
        base=all
    fi
fi

changed=()  # the C++ files to check
if [ "$base" = all ]; then
    format_mode=files
    mapfile -t changed < <(git ls-files | grep -E "$cxx_regex" || true)
    echo "lint: every C++ file (${#changed[@]})"
else
    if ! merge_base=$(git merge-base "$base" HEAD 2>/dev/null); then
        echo "lint: LINT_BASE=$base is not a commit of this clone (a shallow clone?)." >&2
        echo "      Set LINT_BASE to a commit it has, or LINT_BASE=all." >&2
        exit 2
    fi
    mapfile -t changed < <({
        git diff --name-only --diff-filter=d "$merge_base"
        git ls-files --others --exclude-standard
    } | grep -E "$cxx_regex" | sort -u || true)
    echo "lint: ${#changed[@]} C++ file(s) changed since $base ($(git rev-parse --short "$merge_base"))"
fi

failed=()

# --- clang-format -------------------------------------------------------------------------------
start=$SECONDS
format_findings=0
if [ ${#changed[@]} -gt 0 ]; then
    if [ "$format_mode" = files ]; then
        for f in "${changed[@]}"; do
            clang-format --dry-run --Werror "$f" 2>&1 || format_findings=$((format_findings + 1))
        done
    else
        # The added and modified lines of each file, as clang-format --lines=first:last ranges.
        # Untracked files have no diff: they are checked whole.
        declare -A ranges=()
        while read -r file range; do
            ranges[$file]+=" --lines=$range"
        done < <(git diff -U0 --no-color --no-ext-diff --diff-filter=d "$merge_base" -- \
            "${changed[@]}" | awk '
                /^\+\+\+ b\// { file = substr($0, 7); next }
                /^@@ / {
                    split($3, a, ",");  # +first[,count]
                    first = substr(a[1], 2) + 0; count = (2 in a) ? a[2] + 0 : 1;
                    if (count > 0) print file, first ":" first + count - 1;
                }')
        for f in "${changed[@]}"; do
            if git ls-files --error-unmatch -- "$f" >/dev/null 2>&1; then
                [ -n "${ranges[$f]:-}" ] || continue  # only deletions
                # shellcheck disable=SC2086  # the ranges are separate arguments
                clang-format --dry-run --Werror ${ranges[$f]} "$f" 2>&1 \
                    || format_findings=$((format_findings + 1))
            else
                clang-format --dry-run --Werror "$f" 2>&1 || format_findings=$((format_findings + 1))
            fi
        done
    fi
fi
echo "lint: clang-format ($format_mode): $format_findings file(s) not formatted, $((SECONDS - start)) s"
if [ "$format_findings" -gt 0 ]; then
    fix="clang-format -i FILE"
    [ "$format_mode" = files ] || fix="clang-format -i --lines=FIRST:LAST FILE, for the lines shown"
    failed+=("clang-format: $format_findings file(s) to format ($fix)")
fi

# --- clang-tidy ---------------------------------------------------------------------------------
tidy=()
case "$tidy_mode" in
    off) ;;
    all) mapfile -t tidy < <(git ls-files | grep -E "$tidy_regex" || true) ;;
    changed)
        everything=0
        if [ "$base" = all ]; then
            everything=1
        elif git diff --name-only "$merge_base" -- .clang-tidy | grep -q .; then
            everything=1
        else
            for f in "${changed[@]}"; do
                case "$f" in src/*.hpp | include/*) everything=1 ;; esac
            done
        fi
        if [ "$everything" -eq 1 ]; then
            mapfile -t tidy < <(git ls-files | grep -E "$tidy_regex" || true)
        else
            mapfile -t tidy < <(printf '%s\n' "${changed[@]}" | grep -E "$tidy_regex" || true)
        fi
        ;;
    *) echo "lint: LINT_TIDY=$tidy_mode: expected changed, all or off" >&2; exit 2 ;;
esac

start=$SECONDS
tidy_findings=0
if [ ${#tidy[@]} -gt 0 ]; then
    # A configure-only build directory: compile_commands.json and the one generated header.
    cmake -S . -B "$build_dir" -G Ninja -DREDIS_SIDECAR_TESTS=OFF \
        -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
    cmake --build "$build_dir" --target rs_git_commit >/dev/null
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
    # One clang-tidy per file, as many at once as there are cores; each writes its own log, so
    # that one file's findings print together. A crash counts as a finding.
    export build_dir out
    # shellcheck disable=SC2016  # expanded by the inner bash
    printf '%s\n' "${tidy[@]}" | xargs -P "$(nproc)" -I{} bash -c '
        log="$out/$(echo "$1" | tr / _).log"
        if ! clang-tidy -p "$build_dir" --quiet --warnings-as-errors="*" \
            --extra-arg=-Wno-unknown-warning-option "$1" >"$log" 2>&1; then
            mv "$log" "$log.failed"
        fi' _ {}
    for log in "$out"/*.failed; do
        [ -e "$log" ] || continue
        tidy_findings=$((tidy_findings + 1))
        grep -v -E '^[0-9]+ (warning|error)s? generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter' "$log" || true
    done
fi
echo "lint: clang-tidy: ${#tidy[@]} file(s), $tidy_findings with findings, $((SECONDS - start)) s"
if [ "$tidy_findings" -gt 0 ]; then
    failed+=("clang-tidy: findings in $tidy_findings translation unit(s) (checks: .clang-tidy)")
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "lint: FAILED" >&2
    for f in "${failed[@]}"; do echo "  $f" >&2; done
    exit 1
fi
echo "lint: clean"
