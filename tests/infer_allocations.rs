//! A warm inference call takes nothing from the allocator: its buffers are the runner's, made on
//! the first call of its batch size (on the CPU, no buffer for the batch itself), the logits come back into a vector of its own, and no tape
//! or tensor handle is made per call. This binary counts with its own global allocator, so it
//! holds this one test alone.
//!
//! The counter sees every thread (a kernel thread's scratch, made on its first piece of work,
//! would show), so five calls of each size are counted one by one and the quietest is held to
//! zero: an allocation made in every call still fails it.

use kernelab::Device;
use kernelab::cpu::CpuBackend;
use kernelab::nn::{Inference, Mlp};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

#[test]
fn a_warm_call_takes_nothing_from_the_allocator() {
    let device = Device::new(CpuBackend::new());
    for spec in ["784-128-10", "784-512-256-10"] {
        let model = Mlp::new(spec, 0, &device).unwrap();
        let mut inference = Inference::new(&model).unwrap();
        for rows in [1, 64, 256] {
            let images: Vec<f32> = (0..rows * 784).map(|i| (i % 255) as f32 / 255.0).collect();
            for _ in 0..3 {
                inference.forward(&images).unwrap();
            }
            let mut calls: Vec<(usize, usize)> = (0..5)
                .map(|_| {
                    let c = counting_alloc::count(|| {
                        inference.forward(&images).unwrap();
                    });
                    (c.allocations, c.bytes)
                })
                .collect();
            calls.sort();
            assert_eq!(calls[0], (0, 0), "{spec} batch {rows}: allocations and bytes of five calls {calls:?}");
        }
        // The CPU's first layer reads the batch where the caller holds it, so a batch size's
        // buffers hold no copy of the input: at 4096 rows they take less than every layer's
        // output plus that copy (12.8 MB of images) would.
        let prepared = counting_alloc::count(|| inference.prepare(4096).unwrap());
        let batch_copy = 4096 * 784 * std::mem::size_of::<f32>();
        let outputs: usize = model.widths()[1..].iter().map(|w| 4096 * w * std::mem::size_of::<f32>()).sum();
        assert!(
            outputs <= prepared.bytes && prepared.bytes < outputs + batch_copy,
            "{spec}: preparing batch 4096 took {} bytes (outputs {outputs}, a copy of the batch {batch_copy})",
            prepared.bytes
        );
    }
}
