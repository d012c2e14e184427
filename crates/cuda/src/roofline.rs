//! The roofline probe: the FMA peak of `kernels/probe.ptx` and the copy bandwidth of L2 and HBM,
//! timed with CUDA events.

use cust::event::{Event, EventFlags};
use cust::sys;

use kernelab_tensor::{Backend, MemoryLevel, Result, Roofline};

use crate::backend::CudaBackend;
use crate::buffer::own;
use crate::driver::{checked, driver};
use crate::ptx;

impl CudaBackend {
    /// The roofline: the FMA peak (`kernels/probe.ptx`) and the copy bandwidth (bytes read +
    /// written) of two levels — L2 (a device-to-device copy whose source and destination together
    /// take half the L2, repeated 50 times per timing) and HBM (a 256 MiB copy) — each the best
    /// of a few runs timed with events.
    pub(crate) fn measure_roofline(&self) -> Result<Roofline> {
        self.bind()?;
        let len = 64 << 20;
        let (src, dst) = (self.alloc(len)?, self.alloc(len)?);
        let (src, dst) = (own(&*src)?.device_address(), own(&*dst)?.device_address());
        let time = |f: &dyn Fn() -> Result<()>| -> Result<f64> {
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let (start, end) = (Event::new(EventFlags::DEFAULT), Event::new(EventFlags::DEFAULT));
                let (start, end) = (start.map_err(driver("event"))?, end.map_err(driver("event"))?);
                start.record(&self.stream).map_err(driver("event"))?;
                f()?;
                end.record(&self.stream).map_err(driver("event"))?;
                end.synchronize().map_err(driver("waiting for an event"))?;
                best = best.min(f64::from(end.elapsed_time_f32(&start).map_err(driver("event"))?) * 1e-3);
            }
            Ok(best)
        };
        let copy = |bytes: usize, times: usize| {
            time(&|| {
                for _ in 0..times {
                    // SAFETY: both buffers hold at least `bytes` and belong to this context.
                    checked(
                        unsafe { sys::cuMemcpyDtoDAsync_v2(dst, src, bytes, self.stream.as_inner()) },
                        "device copy",
                    )?;
                }
                Ok(())
            })
            .map(|secs| 2.0 * (bytes * times) as f64 / secs / 1e9)
        };
        let hbm_gbps = copy(len * 4, 1)?;
        let l2 = self.l2_bytes.max(1 << 20);
        let l2_gbps = copy(l2 / 4, 50)?;
        let threads = (self.multiprocessors.max(1) as usize) * 2048 * 4;
        let out = self.alloc(threads)?;
        let iterations = 4096u32;
        let fma = self.function(ptx::PROBE, "fma_peak")?;
        let address = own(&*out)?.device_address();
        let peak = time(&|| {
            let mut slots =
                [address, u64::from(iterations), u64::from(0.999_f32.to_bits()), u64::from(1e-3_f32.to_bits())];
            // SAFETY: the slots match fma_peak's parameters; `out` holds one value per thread.
            unsafe {
                self.launch_raw(fma, ((threads / 256) as u32, 1), (256, 1), &mut slots, || "launching fma_peak".into())
            }
        })?;
        let flops = 2.0 * 32.0 * f64::from(iterations) * threads as f64;
        let level = |name: &str, capacity: Option<u64>, gbps: f64| MemoryLevel {
            name: name.into(),
            capacity_one_thread: capacity,
            capacity_all: capacity,
            gbps_one_thread: gbps,
            gbps_all: gbps,
        };
        let gflops = flops / peak / 1e9;
        Ok(Roofline {
            threads: 1,
            peak_gflops: gflops,
            peak_gflops_one_thread: gflops,
            levels: vec![level("L2", Some(l2 as u64), l2_gbps), level("HBM", None, hbm_gbps)],
            how: format!(
                "FMA peak: kernels/probe.ptx fma_peak, 8 chains per thread; bandwidth: device-to-device copies \
                 (read + write) of {} KiB ×50 (L2) and 256 MiB (HBM); best of 5, CUDA events; measured per process",
                (l2 / 4) >> 10
            ),
            peaks: Default::default(),
        })
    }
}
