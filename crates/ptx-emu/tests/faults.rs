//! Faults: what a real GPU refuses (out-of-bounds and misaligned accesses, bad launches) always
//! faults; races and divergent barriers fault with the sanitizer. Each fault names the kernel,
//! the line and its text, the thread and the block.

mod common;

use common::{Arg, download, run, upload};
use kernelab_ptx_emu::{FaultKind, Launch, Memory, Module};

/// A kernel where thread `x` reads `in[x + skew]` (4-byte loads at byte offset `4·x + off`)
/// and writes it to `out[x]`.
const COPY: &str = ".visible .entry copy(.param .u64 copy_in, .param .u64 copy_out, .param .u32 copy_off)\n{\n\
    .reg .b32 %t, %o;\n.reg .b64 %in, %out, %at;\n.reg .f32 %v;\n\
    ld.param.u64 %in, [copy_in];\nld.param.u64 %out, [copy_out];\nld.param.u32 %o, [copy_off];\n\
    mov.u32 %t, %tid.x;\nshl.b32 %t, %t, 2;\nadd.u32 %t, %t, %o;\ncvt.u64.u32 %at, %t;\nadd.u64 %at, %in, %at;\n\
    ld.global.f32 %v, [%at];\nmov.u32 %t, %tid.x;\nmul.wide.u32 %at, %t, 4;\nadd.u64 %at, %out, %at;\nst.global.f32 [%at], %v;\nret;\n}\n";

#[test]
fn out_of_bounds_and_misaligned_global_fault_without_the_sanitizer() {
    let mut mem = Memory::new(1 << 20);
    let a = upload(&mut mem, &[1.0, 2.0, 3.0, 4.0]);
    let neighbour = upload(&mut mem, &[9.0; 4]);
    let out = upload(&mut mem, &[0.0; 8]);
    let args = |off: u32| [Arg::Ptr(a), Arg::Ptr(out), Arg::U32(off)];
    run(COPY, "copy", [1, 1, 1], [4, 1, 1], &args(0), &mut mem, false).unwrap();
    assert_eq!(download(&mem, out, 4), [1.0, 2.0, 3.0, 4.0]);

    let f = run(COPY, "copy", [1, 1, 1], [5, 1, 1], &args(0), &mut mem, false).unwrap_err();
    assert_eq!(f.kind, FaultKind::OutOfBoundsGlobal { addr: a + 16, bytes: 4 });
    assert_eq!((f.kernel.as_str(), f.line, f.thread, f.block), ("copy", 14, [4, 0, 0], [0, 0, 0]));
    assert_eq!(f.instruction, "ld.global.f32 %v, [%at];");
    assert_eq!(
        f.to_string(),
        format!(
            "invalid __global__ read of size 4 at {:#x}: out of bounds of every allocation in kernel `copy` at line 14 `ld.global.f32 %v, [%at];` by thread (4,0,0) in block (0,0,0)",
            a + 16
        )
    );
    // Far past the end: still no neighbour's data (the gaps between allocations are unmapped).
    let f = run(COPY, "copy", [1, 1, 1], [1, 1, 1], &args((neighbour - a) as u32), &mut mem, false);
    assert!(f.is_ok(), "an in-bounds read of the neighbour through a's pointer is legal");
    let f = run(COPY, "copy", [1, 1, 1], [1, 1, 1], &args(4096), &mut mem, false).unwrap_err();
    assert!(matches!(f.kind, FaultKind::OutOfBoundsGlobal { .. }), "{f}");

    let f = run(COPY, "copy", [1, 1, 1], [2, 1, 1], &args(2), &mut mem, false).unwrap_err();
    assert_eq!(f.kind, FaultKind::Misaligned { addr: a + 2, bytes: 4 });
    assert!(f.to_string().starts_with(&format!("misaligned read of size 4 at {:#x}", a + 2)), "{f}");
    // A store past the end is a write; the threads before the faulting one stored theirs.
    let first = download(&mem, out, 4);
    let f = run(COPY, "copy", [1, 1, 1], [5, 1, 1], &[Arg::Ptr(out), Arg::Ptr(a), Arg::U32(0)], &mut mem, false);
    let f = f.unwrap_err();
    assert!(f.to_string().starts_with(&format!("invalid __global__ write of size 4 at {:#x}", a + 16)), "{f}");
    assert_eq!(download(&mem, a, 4), first);
    let freed = mem.alloc(16).unwrap();
    mem.free(freed).unwrap();
    let f = run(COPY, "copy", [1, 1, 1], [1, 1, 1], &[Arg::Ptr(freed), Arg::Ptr(out), Arg::U32(0)], &mut mem, false)
        .unwrap_err();
    assert!(matches!(f.kind, FaultKind::OutOfBoundsGlobal { .. }), "use after free: {f}");
}

/// Thread x stores x to shared word `x·stride` then, after an optional barrier, reads word
/// `(x + 1) % n` and writes it to out[x].
fn shared_kernel(barrier: bool, shared_words: u32) -> String {
    format!(
        ".shared .align 4 .f32 buf[{shared_words}];\n.visible .entry k(.param .u64 k_out)\n{{\n.reg .b32 %t, %n, %s, %u;\n.reg .b64 %out, %at;\n\
        ld.param.u64 %out, [k_out];\nmov.u32 %t, %tid.x;\nmov.u32 %n, %ntid.x;\nmov.u32 %s, buf;\nmad.lo.u32 %u, %t, 4, %s;\n\
        st.shared.u32 [%u], %t;\n{}\nadd.u32 %u, %t, 1;\nrem.u32 %u, %u, %n;\nmad.lo.u32 %u, %u, 4, %s;\nld.shared.u32 %u, [%u];\n\
        mul.wide.u32 %at, %t, 4;\nadd.u64 %at, %out, %at;\nst.global.u32 [%at], %u;\nret;\n}}\n",
        if barrier { "bar.sync 0;" } else { "" }
    )
}

#[test]
fn shared_races_are_found_and_barriers_clear_them() {
    let mut mem = Memory::new(1 << 20);
    let out = mem.alloc(64 * 4).unwrap();
    run(&shared_kernel(true, 64), "k", [1, 1, 1], [64, 1, 1], &[Arg::Ptr(out)], &mut mem, true).unwrap();
    let got: Vec<u32> = download(&mem, out, 64).iter().map(|v| v.to_bits()).collect();
    assert_eq!(got, (0..64).map(|t| (t + 1) % 64).collect::<Vec<u32>>());

    let f = run(&shared_kernel(false, 64), "k", [1, 1, 1], [64, 1, 1], &[Arg::Ptr(out)], &mut mem, true).unwrap_err();
    // Thread 0 reads word 1 before thread 1 wrote it; thread 1's write is the race.
    assert_eq!(f.kind, FaultKind::SharedRace { offset: 4, other_thread: [0, 0, 0] });
    assert_eq!((f.thread, f.instruction.as_str()), ([1, 0, 0], "st.shared.u32 [%u], %t;"));
    // Without the sanitizer the race is not reported (the result shows it: NaN poison).
    run(&shared_kernel(false, 64), "k", [1, 1, 1], [64, 1, 1], &[Arg::Ptr(out)], &mut mem, false).unwrap();
    assert_eq!(download(&mem, out, 1)[0].to_bits(), u32::MAX, "unwritten shared memory reads as NaN");
}

#[test]
fn out_of_bounds_shared_always_faults() {
    let mut mem = Memory::new(1 << 20);
    let out = mem.alloc(64 * 4).unwrap();
    let f = run(&shared_kernel(true, 8), "k", [1, 1, 1], [9, 1, 1], &[Arg::Ptr(out)], &mut mem, false).unwrap_err();
    assert_eq!(f.kind, FaultKind::OutOfBoundsShared { offset: 32, bytes: 4 });
    assert_eq!(f.thread, [8, 0, 0]);
    // Dynamic shared memory extends the window.
    let text = shared_kernel(true, 8);
    let m = Module::parse(&text).unwrap();
    let launch = Launch { grid: [1, 1, 1], block: [9, 1, 1], dynamic_shared_bytes: 4, sanitize: true };
    kernelab_ptx_emu::launch(m.kernel("k").unwrap(), &launch, &[&out.to_le_bytes()], &mut mem).unwrap();
}

#[test]
fn divergent_barriers_and_shuffles() {
    // Threads with x >= 40 exit before the barrier the others wait at.
    let text = ".visible .entry k()\n{\n.reg .b32 %t, %o;\n.reg .pred %p;\nmov.u32 %t, %tid.x;\nsetp.ge.u32 %p, %t, 40;\n\
        @%p bra END;\nbar.sync 0;\nEND:\nret;\n}\n";
    let mut mem = Memory::new(1024);
    let f = run(text, "k", [2, 1, 1], [64, 1, 1], &[], &mut mem, true).unwrap_err();
    assert_eq!(f.kind, FaultKind::DivergentBarrier { other_thread: [40, 0, 0], other: "has exited".into() });
    assert_eq!((f.line, f.thread, f.block), (8, [0, 0, 0], [0, 0, 0]));
    run(text, "k", [2, 1, 1], [64, 1, 1], &[], &mut mem, false).expect("without the sanitizer the barrier releases");
    // Two different barriers.
    let two = text.replace("@%p bra END;\nbar.sync 0;", "@%p bra OTHER;\nbar.sync 0;\nbra END;\nOTHER:\nbar.sync 0;");
    let f = run(&two, "k", [1, 1, 1], [64, 1, 1], &[], &mut mem, true).unwrap_err();
    assert_eq!(f.kind, FaultKind::DivergentBarrier { other_thread: [40, 0, 0], other: "waits at line 11".into() });
    // Lanes of one warp at a shuffle and at a barrier: a deadlock on hardware, a fault always.
    let shfl = text.replace("bar.sync 0;\nEND:", "shfl.sync.bfly.b32 %o, %t, 1, 31, -1;\nEND:\nbar.sync 0;");
    let f = run(&shfl, "k", [1, 1, 1], [64, 1, 1], &[], &mut mem, false).unwrap_err();
    assert!(matches!(f.kind, FaultKind::DivergentBarrier { other_thread: [40, 0, 0], .. }), "{f}");
}

#[test]
fn bad_launches_are_refused_before_running() {
    let m = Module::parse(COPY).unwrap();
    let k = m.kernel("copy").unwrap();
    let mut mem = Memory::new(1024);
    let p = 0u64.to_le_bytes();
    let u = 0u32.to_le_bytes();
    let launch = |grid, block, shared| Launch { grid, block, dynamic_shared_bytes: shared, sanitize: false };
    let why = |l: &Launch, params: &[&[u8]]| match kernelab_ptx_emu::launch(k, l, params, &mut Memory::new(0)) {
        Err(f) => match f.kind {
            FaultKind::InvalidLaunch(why) => why,
            k => panic!("{k:?}"),
        },
        Ok(()) => panic!("launched"),
    };
    let ok: [&[u8]; 3] = [&p, &p, &u];
    assert!(why(&launch([1, 1, 1], [1025, 1, 1], 0), &ok).contains("at most 1024 threads"));
    assert!(why(&launch([1, 1, 1], [32, 32, 2], 0), &ok).contains("at most 1024 threads"));
    assert!(why(&launch([0, 1, 1], [32, 1, 1], 0), &ok).contains("grid (0, 1, 1)"));
    assert!(why(&launch([1, 70000, 1], [32, 1, 1], 0), &ok).contains("65535"));
    assert!(why(&launch([1, 1, 1], [32, 1, 1], 49 * 1024), &ok).contains("shared memory"));
    assert_eq!(why(&launch([1, 1, 1], [32, 1, 1], 0), &ok[..2]), "`copy` takes 3 parameters, the launch passes 2");
    assert_eq!(
        why(&launch([1, 1, 1], [32, 1, 1], 0), &[&p, &p, &p]),
        "parameter 2 (`copy_off`) of `copy` is 4 bytes, the launch passes 8"
    );
    // A null pointer is no allocation.
    let f = kernelab_ptx_emu::launch(k, &launch([1, 1, 1], [1, 1, 1], 0), &ok, &mut mem).unwrap_err();
    assert_eq!(f.kind, FaultKind::OutOfBoundsGlobal { addr: 0, bytes: 4 });
}

/// `.extern .shared` memory starts after the static variables, aligned, and holds
/// `dynamic_shared_bytes`: thread x writes dyn[x] (16-byte vectors) and reads its neighbour's
/// (thread 0 alone writes the last static word: every thread writing it would race).
#[test]
fn dynamic_shared_memory_after_the_static_variables() {
    let text = ".shared .align 4 .f32 small[5];\n.extern .shared .align 16 .b8 dyn[];\n\
        .visible .entry k(.param .u64 k_out)\n{\n.reg .b32 %t, %a, %s, %n;\n.reg .f32 %f;\n.reg .b64 %out, %at;\n.reg .pred %p;\n\
        ld.param.u64 %out, [k_out];\nmov.u32 %t, %tid.x;\nmov.u32 %n, %ntid.x;\nmov.u32 %s, small;\nsetp.eq.u32 %p, %t, 0;\n\
        @%p st.shared.f32 [%s+16], 0f3F800000;\n\
        mov.u32 %a, dyn;\nshl.b32 %s, %t, 4;\nadd.u32 %s, %s, %a;\ncvt.rn.f32.u32 %f, %t;\nst.shared.v4.f32 [%s], {%f, %f, %f, %f};\nbar.sync 0;\n\
        add.u32 %s, %t, 1;\nrem.u32 %s, %s, %n;\nshl.b32 %s, %s, 4;\nadd.u32 %s, %s, %a;\nld.shared.f32 %f, [%s+12];\n\
        mul.wide.u32 %at, %t, 4;\nadd.u64 %at, %out, %at;\nst.global.f32 [%at], %f;\nret;\n}\n";
    let m = Module::parse(text).unwrap();
    let k = m.kernel("k").unwrap();
    assert_eq!(k.static_shared_bytes(), 20);
    let mut mem = Memory::new(1 << 16);
    let out = mem.alloc(8 * 4).unwrap();
    let launch = |dynamic| Launch { grid: [1, 1, 1], block: [8, 1, 1], dynamic_shared_bytes: dynamic, sanitize: true };
    kernelab_ptx_emu::launch(k, &launch(128), &[&out.to_le_bytes()], &mut mem).unwrap();
    assert_eq!(download(&mem, out, 8), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.0]);
    // One vector short: thread 7's store leaves the window (static 20, padded to 32, + 112).
    let f = kernelab_ptx_emu::launch(k, &launch(112), &[&out.to_le_bytes()], &mut mem).unwrap_err();
    assert_eq!((f.kind, f.thread), (FaultKind::OutOfBoundsShared { offset: 32 + 112, bytes: 16 }, [7, 0, 0]));
}
