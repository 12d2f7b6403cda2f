//! How arithmetic on the calling thread treats subnormal numbers.
//!
//! A subnormal number lies between zero and the smallest normal one (about
//! 1.2e-38 in `f32`). Many x86 processors, Intel's among them, handle an
//! operation that reads or produces one in microcode, at a hundred cycles or
//! more instead of one. Training makes such numbers as a matter of course:
//! under an L2 penalty, a weight that no training example reaches (that of
//! an input column no example sets, or of a unit that never fires) shrinks
//! geometrically toward zero, and once it is below about 1e-19 its square,
//! and the square of its gradient in Adam's second moment, underflow. On
//! such a processor a training run's epochs grew from under a second to two
//! as more of those weights crossed the line.
//!
//! [`Subnormals::FlushToZero`] turns every subnormal result and operand into
//! zero, which machine-learning runtimes commonly do on their compute
//! threads. It changes a result only where a subnormal would have appeared,
//! values far below anything a network's output can resolve. The setting
//! belongs to one thread, so a program that wants it sets it on every thread
//! that runs kernels, for example in rayon's
//! `ThreadPoolBuilder::start_handler` (as [`pool_builder`] does); kernels
//! then stay bit-identical across thread counts, as long as every thread
//! has the same setting.
//!
//! Rust and LLVM assume the default setting when they evaluate expressions
//! at compile time, so a constant the compiler folds keeps its subnormal
//! value; the kernels compute from run-time data and are not affected.

/// What arithmetic does with numbers below the smallest normal one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subnormals {
    /// Gradual underflow as IEEE 754 defines it: every processor's default.
    Keep,
    /// Results below the smallest normal number become zero, and subnormal
    /// operands are read as zero (x86's flush-to-zero and
    /// denormals-are-zero bits, AArch64's flush-to-zero bit).
    FlushToZero,
}

/// Sets how arithmetic on the calling thread treats subnormal numbers and
/// returns the previous setting.
///
/// On POSIX systems threads that the calling thread starts afterwards
/// inherit the setting; threads that exist already keep their own. On
/// processors other than x86-64 and AArch64 there is no switch to set: the
/// call does nothing and returns [`Subnormals::Keep`].
///
/// ```
/// use ferrochem_kernels::subnormal::{set_subnormals, subnormals, Subnormals};
///
/// let previous = set_subnormals(Subnormals::FlushToZero);
/// let tiny = std::hint::black_box(f32::MIN_POSITIVE);
/// if subnormals() == Subnormals::FlushToZero {
///     assert_eq!(std::hint::black_box(tiny / 2.0), 0.0);
/// }
/// set_subnormals(previous);
/// ```
pub fn set_subnormals(mode: Subnormals) -> Subnormals {
    let previous = subnormals();
    control::set(mode);
    previous
}

/// How arithmetic on the calling thread treats subnormal numbers now.
pub fn subnormals() -> Subnormals {
    control::get()
}

/// A builder for a rayon pool of `n_threads` workers (0: rayon's default)
/// that each start with `mode`, so that every thread running kernels
/// treats subnormal numbers alike. Build it with `build()` for a pool of
/// one's own, or `build_global()` for the global one.
///
/// ```
/// use ferrochem_kernels::subnormal::{pool_builder, subnormals, Subnormals};
///
/// let pool = pool_builder(2, Subnormals::FlushToZero).build().unwrap();
/// // Where there is a switch to set, the workers have set it.
/// if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
///     assert_eq!(pool.install(subnormals), Subnormals::FlushToZero);
/// }
/// ```
pub fn pool_builder(n_threads: usize, mode: Subnormals) -> rayon::ThreadPoolBuilder {
    rayon::ThreadPoolBuilder::new().num_threads(n_threads).start_handler(move |_| {
        set_subnormals(mode);
    })
}

#[cfg(target_arch = "x86_64")]
mod control {
    use std::arch::asm;

    use super::Subnormals;

    /// MXCSR's flush-to-zero bit (results) and denormals-are-zero bit
    /// (operands), which every x86-64 processor implements.
    const FLUSH_BITS: u32 = (1 << 15) | (1 << 6);

    fn read() -> u32 {
        let mut csr = 0u32;
        // SAFETY: `stmxcsr` stores the 32-bit MXCSR register into the four
        // bytes at the address it is given, here those of `csr`, a live
        // local that nothing else borrows; it touches nothing else.
        unsafe {
            asm!("stmxcsr dword ptr [{}]", in(reg) &raw mut csr, options(nostack, preserves_flags))
        };
        csr
    }

    pub(super) fn get() -> Subnormals {
        if read() & FLUSH_BITS == FLUSH_BITS { Subnormals::FlushToZero } else { Subnormals::Keep }
    }

    pub(super) fn set(mode: Subnormals) {
        let csr = match mode {
            Subnormals::Keep => read() & !FLUSH_BITS,
            Subnormals::FlushToZero => read() | FLUSH_BITS,
        };
        // SAFETY: `ldmxcsr` loads MXCSR from the four bytes of `csr`, a live
        // local. The value is the register as it was, with only the two
        // flush bits changed: both exist on every x86-64 processor (setting
        // a reserved bit would fault), and neither unmasks an exception or
        // changes the rounding mode.
        unsafe {
            asm!("ldmxcsr dword ptr [{}]", in(reg) &raw const csr,
                 options(nostack, readonly, preserves_flags))
        };
    }
}

#[cfg(target_arch = "aarch64")]
mod control {
    use std::arch::asm;

    use super::Subnormals;

    /// FPCR's flush-to-zero bit, which covers both results and operands.
    const FLUSH_BIT: u64 = 1 << 24;

    fn read() -> u64 {
        let fpcr: u64;
        // SAFETY: reading FPCR into a general register has no other effect.
        unsafe { asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags)) };
        fpcr
    }

    pub(super) fn get() -> Subnormals {
        if read() & FLUSH_BIT != 0 { Subnormals::FlushToZero } else { Subnormals::Keep }
    }

    pub(super) fn set(mode: Subnormals) {
        let fpcr = match mode {
            Subnormals::Keep => read() & !FLUSH_BIT,
            Subnormals::FlushToZero => read() | FLUSH_BIT,
        };
        // SAFETY: writes FPCR back as it was with only the flush-to-zero
        // bit changed, which every AArch64 processor implements; no trap is
        // enabled and the rounding mode is unchanged.
        unsafe { asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack, preserves_flags)) };
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod control {
    use super::Subnormals;

    pub(super) fn get() -> Subnormals {
        Subnormals::Keep
    }

    pub(super) fn set(_mode: Subnormals) {}
}

#[cfg(test)]
mod tests {
    use std::hint::black_box;

    use super::*;

    #[test]
    fn flushing_turns_subnormal_results_and_operands_into_zero() {
        // Run on a thread of its own so the test harness's thread keeps its
        // setting whatever happens here.
        std::thread::spawn(|| {
            assert_eq!(subnormals(), Subnormals::Keep, "threads start with IEEE underflow");
            let half_min = black_box(f32::MIN_POSITIVE) / black_box(2.0f32);
            assert!(half_min > 0.0 && !half_min.is_normal());

            assert_eq!(set_subnormals(Subnormals::FlushToZero), Subnormals::Keep);
            assert_eq!(subnormals(), Subnormals::FlushToZero);
            assert_eq!(black_box(f32::MIN_POSITIVE) / black_box(2.0f32), 0.0);
            assert_eq!(black_box(1e-30f32) * black_box(1e-30f32), 0.0);
            // A subnormal operand reads as zero: adding it changes nothing.
            assert_eq!(black_box(half_min) + black_box(0.0f32), 0.0);
            assert_eq!(black_box(f64::MIN_POSITIVE) / black_box(4.0f64), 0.0);
            // Threads started now inherit the setting.
            if cfg!(unix) {
                let inherited = std::thread::spawn(subnormals).join().unwrap();
                assert_eq!(inherited, Subnormals::FlushToZero);
            }

            assert_eq!(set_subnormals(Subnormals::Keep), Subnormals::FlushToZero);
            assert_eq!(black_box(f32::MIN_POSITIVE) / black_box(2.0f32), half_min);
        })
        .join()
        .unwrap();
    }
}
