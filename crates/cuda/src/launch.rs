//! Launching: PTX modules loaded on first use and their functions cached by (module text, entry
//! point); `cuLaunchKernel` with the plan's arguments; CUDA events around each launch while device
//! timing is on.

use std::ffi::{CString, c_void};

use cust::event::{Event, EventFlags};
use cust::module::Module;
use cust::sys;

use kernelab_tensor::Result;

use crate::backend::CudaBackend;
use crate::buffer::own;
use crate::driver::{checked, code, device_error, driver, jit_error_log};
use crate::plan::{Arg, Launch};
use crate::ptx::{self, PtxModule};

/// The most parameters any entry point of `kernels/` takes (matmul's twelve).
const MAX_ARGS: usize = 12;

/// A loaded kernel. The handle stays valid while its module (kept by the backend) is loaded.
#[derive(Clone, Copy)]
pub(crate) struct Function(sys::CUfunction);

// SAFETY: a CUfunction is a driver handle usable from any thread once its context is current.
unsafe impl Send for Function {}

impl CudaBackend {
    /// Loads PTX text as a module; a failure carries the driver's JIT error log and the file name.
    pub fn load_ptx(&self, file: &str, source: &str) -> Result<Module> {
        self.bind()?;
        let file = ptx::path(file, source);
        let text = CString::new(source).map_err(|_| device_error(format!("{file} contains a NUL byte")))?;
        Module::from_ptx_cstr(&text, &[]).map_err(|e| {
            device_error(format!("{file} failed to load: {}; the JIT log says: {}", code(e), jit_error_log(&text)))
        })
    }

    /// The loaded function `entry` of `module`, loading the module on first use.
    pub(crate) fn function(&self, module: PtxModule, entry: &'static str) -> Result<Function> {
        let mut functions = self.functions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&f) = functions.get(&(module.id(), entry)) {
            return Ok(f);
        }
        let mut modules = self.modules.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let loaded = match modules.entry(module.id()) {
            std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(self.load_ptx(module.file, module.source)?),
        };
        let f = loaded
            .get_function(entry)
            .map_err(driver(&format!("{} has no entry point `{entry}`", module.path())))?
            .to_raw();
        functions.insert((module.id(), entry), Function(f));
        Ok(Function(f))
    }

    /// Launches a planned kernel on the stream, bracketed by events while timing is on.
    pub(crate) fn run(&self, launch: Launch<'_>) -> Result<()> {
        let function = self.function(launch.module, launch.entry)?;
        let mut slots = [0u64; MAX_ARGS];
        if launch.args.len() > MAX_ARGS {
            return Err(device_error(format!("{} takes more than {MAX_ARGS} arguments", launch.entry)));
        }
        for (slot, arg) in slots.iter_mut().zip(&launch.args) {
            *slot = match arg {
                Arg::Buffer(b) => own(*b)?.device_address(),
                Arg::U32(v) => u64::from(*v),
                Arg::F32(v) => u64::from(v.to_bits()),
            };
        }
        let events = self.start_event()?;
        let what = || format!("launching {} from {}", launch.entry, launch.module.path());
        // SAFETY: the plan's arguments match the entry point's parameters (checked by the tests
        // against the PTX), and the buffers' lengths were checked by `Kernel::check`.
        unsafe { self.launch_raw(function, launch.grid, launch.block, &mut slots[..launch.args.len()], what)? };
        self.end_event(events)
    }

    /// `cuLaunchKernel` on the stream with these argument values, each in an 8-byte slot (the driver
    /// reads as many bytes as the parameter has).
    ///
    /// # Safety
    /// `slots` must match the entry point's parameters in number and type, and every address in
    /// them must be a live buffer large enough for what the kernel reads and writes.
    pub(crate) unsafe fn launch_raw(
        &self,
        function: Function,
        grid: (u32, u32),
        block: (u32, u32),
        slots: &mut [u64],
        what: impl FnOnce() -> String,
    ) -> Result<()> {
        let mut pointers = [std::ptr::null_mut::<c_void>(); MAX_ARGS];
        for (pointer, slot) in pointers.iter_mut().zip(slots.iter_mut()) {
            *pointer = (slot as *mut u64).cast();
        }
        // SAFETY: the caller vouches for the arguments; the slots outlive the call, which copies them.
        let result = unsafe {
            sys::cuLaunchKernel(
                function.0,
                grid.0,
                grid.1,
                1,
                block.0,
                block.1,
                1,
                0,
                self.stream.as_inner(),
                pointers.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        };
        if result == sys::cudaError_enum::CUDA_SUCCESS { Ok(()) } else { checked(result, &what()) }
    }

    pub(crate) fn start_event(&self) -> Result<Option<Event>> {
        let timing = self.timing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if timing.is_none() {
            return Ok(None);
        }
        let start = Event::new(EventFlags::DEFAULT).map_err(driver("creating an event"))?;
        start.record(&self.stream).map_err(driver("recording an event"))?;
        Ok(Some(start))
    }

    pub(crate) fn end_event(&self, start: Option<Event>) -> Result<()> {
        let Some(start) = start else { return Ok(()) };
        let end = Event::new(EventFlags::DEFAULT).map_err(driver("creating an event"))?;
        end.record(&self.stream).map_err(driver("recording an event"))?;
        if let Some(pairs) = self.timing.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).as_mut() {
            pairs.push((start, end));
        }
        Ok(())
    }
}
