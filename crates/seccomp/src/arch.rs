//! Architectures: audit arch values (linux/audit.h), word size, syscall tables.

use crate::syscalls_table as t;

/// `__X32_SYSCALL_BIT`: x32 syscalls arrive with AUDIT_ARCH_X86_64 and this bit set.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
    Riscv64,
    S390x,
    Ppc64,
    Ppc64le,
}

impl Arch {
    /// The architecture this crate was built for (libseccomp's SCMP_ARCH_NATIVE).
    pub fn native() -> Arch {
        #[cfg(all(target_arch = "x86_64", target_pointer_width = "32"))]
        return Arch::X32;
        #[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
        return Arch::X86_64;
        #[cfg(target_arch = "x86")]
        return Arch::X86;
        #[cfg(target_arch = "aarch64")]
        return Arch::Aarch64;
        #[cfg(target_arch = "arm")]
        return Arch::Arm;
        #[cfg(target_arch = "riscv64")]
        return Arch::Riscv64;
        #[cfg(target_arch = "s390x")]
        return Arch::S390x;
        #[cfg(all(target_arch = "powerpc64", target_endian = "little"))]
        return Arch::Ppc64le;
        #[cfg(all(target_arch = "powerpc64", target_endian = "big"))]
        return Arch::Ppc64;
    }

    /// AUDIT_ARCH_* value the kernel puts in `seccomp_data.arch`.
    pub fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => 0xC000_003E,
            Arch::X86 => 0x4000_0003,
            Arch::Aarch64 => 0xC000_00B7,
            Arch::Arm => 0x4000_0028,
            Arch::Riscv64 => 0xC000_00F3,
            Arch::S390x => 0x8000_0016,
            Arch::Ppc64 => 0x8000_0015,
            Arch::Ppc64le => 0xC000_0015,
        }
    }

    /// 32-bit ABIs (x32 too): libseccomp compares only the low word of arguments.
    pub(crate) fn is_32bit(self) -> bool {
        matches!(self, Arch::X86 | Arch::X32 | Arch::Arm)
    }

    pub(crate) fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => t::X86_64,
            Arch::X86 => t::X86,
            Arch::X32 => t::X32,
            Arch::Aarch64 => t::AARCH64,
            Arch::Arm => t::ARM,
            Arch::Riscv64 => t::RISCV64,
            Arch::S390x => t::S390X,
            Arch::Ppc64 | Arch::Ppc64le => t::PPC64,
        }
    }

    /// Column of this architecture in `syscalls_table::NUMBERS`.
    fn column(self) -> usize {
        match self {
            Arch::X86_64 => 0,
            Arch::X86 => 1,
            Arch::X32 => 2,
            Arch::Aarch64 => 3,
            Arch::Arm => 4,
            Arch::Riscv64 => 5,
            Arch::S390x => 6,
            Arch::Ppc64 | Arch::Ppc64le => 7,
        }
    }

    /// Number on this architecture of the syscall with index `idx` (from [`name_index`]).
    pub(crate) fn nr_at(self, idx: usize) -> Option<u32> {
        let n = t::NUMBERS[idx][self.column()];
        u32::try_from(n).ok()
    }

    /// Syscall number of `name` on this architecture, `None` if it does not exist here.
    pub fn syscall_nr(self, name: &str) -> Option<u32> {
        let tab = self.table();
        tab.binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| tab[i].1)
    }

    pub fn scmp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::X32 => "SCMP_ARCH_X32",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
            Arch::Arm => "SCMP_ARCH_ARM",
            Arch::Riscv64 => "SCMP_ARCH_RISCV64",
            Arch::S390x => "SCMP_ARCH_S390X",
            Arch::Ppc64 => "SCMP_ARCH_PPC64",
            Arch::Ppc64le => "SCMP_ARCH_PPC64LE",
        }
    }

    /// From the OCI enum; `None` for architectures this crate has no syscall table for.
    pub fn from_oci(a: oci_spec::runtime::Arch) -> Option<Arch> {
        use oci_spec::runtime::Arch as O;
        Some(match a {
            O::ScmpArchNative => Arch::native(),
            O::ScmpArchX86_64 => Arch::X86_64,
            O::ScmpArchX86 => Arch::X86,
            O::ScmpArchX32 => Arch::X32,
            O::ScmpArchAarch64 => Arch::Aarch64,
            O::ScmpArchArm => Arch::Arm,
            O::ScmpArchRiscv64 => Arch::Riscv64,
            O::ScmpArchS390x => Arch::S390x,
            O::ScmpArchPpc64 => Arch::Ppc64,
            O::ScmpArchPpc64le => Arch::Ppc64le,
            _ => return None,
        })
    }
}

/// Whether the native kernel can execute code of architecture `a` (native or a compat ABI), so
/// that `a` can appear in `seccomp_data.arch`.
pub(crate) fn host_can_run(a: oci_spec::runtime::Arch) -> bool {
    use oci_spec::runtime::Arch as O;
    let family: &[O] = match Arch::native() {
        Arch::X86_64 | Arch::X86 | Arch::X32 => {
            &[O::ScmpArchX86_64, O::ScmpArchX86, O::ScmpArchX32]
        }
        Arch::Aarch64 | Arch::Arm => &[O::ScmpArchAarch64, O::ScmpArchArm],
        Arch::S390x => &[O::ScmpArchS390x, O::ScmpArchS390],
        Arch::Ppc64 | Arch::Ppc64le => &[O::ScmpArchPpc64, O::ScmpArchPpc64le, O::ScmpArchPpc],
        Arch::Riscv64 => &[O::ScmpArchRiscv64],
    };
    a == O::ScmpArchNative || family.contains(&a)
}

/// Index of `name` in the list of syscalls known on any architecture.
pub(crate) fn name_index(name: &str) -> Option<usize> {
    t::ALL_NAMES.binary_search(&name).ok()
}

/// Whether `name` is a syscall on any Linux architecture.
pub fn is_known_syscall(name: &str) -> bool {
    t::ALL_NAMES.binary_search(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_sorted_and_sane() {
        for a in [
            Arch::X86_64,
            Arch::X86,
            Arch::X32,
            Arch::Aarch64,
            Arch::Arm,
            Arch::Riscv64,
            Arch::S390x,
            Arch::Ppc64,
        ] {
            let tab = a.table();
            assert!(tab.windows(2).all(|w| w[0].0 < w[1].0), "{a:?} not sorted");
        }
        assert!(crate::syscalls_table::ALL_NAMES
            .windows(2)
            .all(|w| w[0] < w[1]));
        assert_eq!(Arch::X86_64.syscall_nr("read"), Some(0));
        assert_eq!(
            Arch::X86_64.syscall_nr("mkdir"),
            Some(libc::SYS_mkdir as u32)
        );
        assert_eq!(Arch::X86_64.syscall_nr("unshare"), Some(272));
        assert_eq!(Arch::X86.syscall_nr("chown32"), Some(212));
        assert_eq!(Arch::X86_64.syscall_nr("chown32"), None);
        assert_eq!(Arch::X32.syscall_nr("read"), Some(X32_SYSCALL_BIT));
        assert_eq!(Arch::Aarch64.syscall_nr("mkdir"), None);
        assert_eq!(Arch::Arm.syscall_nr("set_tls"), Some(0x0f0005));
        assert!(is_known_syscall("chown32"));
        // the index table agrees with the per-architecture tables
        for (i, name) in t::ALL_NAMES.iter().enumerate() {
            for a in [
                Arch::X86_64,
                Arch::X86,
                Arch::X32,
                Arch::Aarch64,
                Arch::Arm,
                Arch::Riscv64,
                Arch::S390x,
                Arch::Ppc64,
            ] {
                assert_eq!(a.nr_at(i), a.syscall_nr(name), "{a:?} {name}");
            }
        }
        assert!(is_known_syscall("s390_pci_mmio_read"));
        assert!(!is_known_syscall("no_such_call"));
    }
}
