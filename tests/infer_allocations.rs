//! A warm inference call takes nothing from the allocator: its buffers are the runner's, made on
//! the first call of its batch size, the logits come back into a vector of its own, and no tape
//! or tensor handle is made per call. This binary counts with its own global allocator, so it
//! holds this one test alone.
//!
//! The counter sees every thread (a kernel thread's scratch, made on its first piece of work,
//! would show), so five calls of each size are counted one by one and the quietest is held to
//! zero: an allocation made in every call still fails it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use kernelab::Device;
use kernelab::cpu::CpuBackend;
use kernelab::nn::{Inference, Mlp};

/// The system allocator, counting while `COUNTING` is set.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_warm_call_takes_nothing_from_the_allocator() {
    let device = Device::new(CpuBackend::new());
    for spec in ["784-128-10", "784-512-256-10"] {
        let model = Mlp::new(spec, 0, &device).unwrap();
        let mut inference = Inference::new(&model);
        for rows in [1, 64, 256] {
            let images: Vec<f32> = (0..rows * 784).map(|i| (i % 255) as f32 / 255.0).collect();
            for _ in 0..3 {
                inference.forward(&images).unwrap();
            }
            let mut calls: Vec<(usize, usize)> = (0..5)
                .map(|_| {
                    [&ALLOCATIONS, &BYTES].iter().for_each(|c| c.store(0, Ordering::Relaxed));
                    COUNTING.store(true, Ordering::Relaxed);
                    inference.forward(&images).unwrap();
                    COUNTING.store(false, Ordering::Relaxed);
                    (ALLOCATIONS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed))
                })
                .collect();
            calls.sort();
            assert_eq!(calls[0], (0, 0), "{spec} batch {rows}: allocations and bytes of five calls {calls:?}");
        }
    }
}
