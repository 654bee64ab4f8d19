/* Development oracle (not built by cargo, not a dependency): builds a filter with libseccomp
 * from a line-oriented rule list, applying runc's preprocessing (skip rules equal to the
 * default action, split several conditions on one argument into ORed rules, skip names
 * libseccomp cannot resolve), and writes the BPF program to stdout (seccomp_export_bpf).
 *
 * Input (stdin):  D <default_ret>
 *                 A <scmp_arch_token>
 *                 R <ret> <name> <nargs> { <index> <op 1..7> <value> <value_two> }
 * Skipped names are reported on stderr as "SKIP <name>".
 * Build: cc -O2 -o oracle tools/libseccomp_oracle.c -lseccomp  (Debian: libseccomp-dev) */
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

int main(void) {
    char tag[4];
    unsigned long def = 0;
    scmp_filter_ctx ctx = NULL;
    while (scanf("%3s", tag) == 1) {
        if (!strcmp(tag, "D")) {
            scanf("%lu", &def);
            ctx = seccomp_init((uint32_t)def);
            if (!ctx) { fprintf(stderr, "seccomp_init failed\n"); return 1; }
        } else if (!strcmp(tag, "A")) {
            unsigned long a; scanf("%lu", &a);
            int r = seccomp_arch_add(ctx, (uint32_t)a);
            if (r && r != -EEXIST) { fprintf(stderr, "arch_add %lu: %d\n", a, r); return 1; }
        } else if (!strcmp(tag, "R")) {
            unsigned long act; char name[128]; int n;
            struct scmp_arg_cmp c[6];
            scanf("%lu %127s %d", &act, name, &n);
            int count[6] = {0};
            for (int i = 0; i < n; i++) {
                unsigned idx, op; unsigned long long v, v2;
                scanf("%u %u %llu %llu", &idx, &op, &v, &v2);
                c[i].arg = idx; c[i].op = op; c[i].datum_a = v; c[i].datum_b = v2;
                count[idx]++;
            }
            if ((uint32_t)act == (uint32_t)def) continue;
            int nr = seccomp_syscall_resolve_name(name);
            if (nr == __NR_SCMP_ERROR) { fprintf(stderr, "SKIP %s\n", name); continue; }
            int split = 0;
            for (int i = 0; i < 6; i++) if (count[i] > 1) split = 1;
            int r = 0;
            if (split) {
                for (int i = 0; i < n && !r; i++) r = seccomp_rule_add_array(ctx, (uint32_t)act, nr, 1, &c[i]);
            } else {
                r = seccomp_rule_add_array(ctx, (uint32_t)act, nr, n, c);
            }
            if (r) { fprintf(stderr, "rule %s: %d\n", name, r); return 1; }
        }
    }
    if (seccomp_export_bpf(ctx, 1)) { fprintf(stderr, "export failed\n"); return 1; }
    return 0;
}
