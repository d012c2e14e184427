//! The driver's state: one emulated device, its contexts, and what lives in them (memory, modules,
//! functions, streams, events), behind one process-wide mutex. Handles given out to callers are
//! opaque non-zero numbers, never addresses of ours.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use kernelab_ptx_emu::{Fault, FaultKind, Memory, Module};

use crate::code;
use crate::config::Config;

/// `Err(code)`: a `CUresult` other than `CUDA_SUCCESS`.
pub type Answer<T = ()> = Result<T, u32>;

/// One `CUresult` from an [`Answer`].
pub fn answer(result: Answer) -> u32 {
    match result {
        Ok(()) => code::SUCCESS,
        Err(code) => code,
    }
}

/// What a device's contexts share: its memory and everything created in it. It exists while at
/// least one context does; when the last goes (the primary context released as often as it was
/// retained, every created context destroyed), it goes with everything in it, as on a GPU.
pub struct Device {
    pub memory: Memory,
    pub modules: HashMap<u64, Arc<Module>>,
    /// Function handle → its module's handle and the kernel's name.
    pub functions: HashMap<u64, (u64, String)>,
    pub streams: HashSet<u64>,
    /// Event handle → when it was last recorded (work runs at launch, so recording is completion).
    pub events: HashMap<u64, Option<Instant>>,
    /// The error of a kernel fault: every later call on the device returns it, as a real driver's
    /// context is lost after an illegal address.
    pub sticky: Option<u32>,
}

/// The whole driver.
pub struct Driver {
    /// Set by `cuInit`.
    pub config: Option<Config>,
    /// The primary context's handle while it is retained, and how many times it is.
    pub primary: Option<(u64, u32)>,
    /// Contexts made with `cuCtxCreate`, alive until `cuCtxDestroy`.
    pub created: BTreeSet<u64>,
    pub device: Option<Device>,
    next_handle: u64,
    /// The text of the last kernel fault or refused launch, for `kernelab_emu_last_fault`.
    pub last_fault: String,
}

static DRIVER: Mutex<Driver> = Mutex::new(Driver {
    config: None,
    primary: None,
    created: BTreeSet::new(),
    device: None,
    next_handle: 0x1000,
    last_fault: String::new(),
});

thread_local! {
    /// The calling thread's current context (0: none).
    pub static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// The driver, locked. A panic while it was held (none is expected) does not lock everyone out.
pub fn driver() -> MutexGuard<'static, Driver> {
    DRIVER.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Handles are read from a pointer-sized value; 0 is the null handle.
pub fn handle<T>(raw: *mut T) -> u64 {
    raw as usize as u64
}

impl Driver {
    /// A fresh handle for a context, module, function, stream or event.
    pub fn new_handle(&mut self) -> u64 {
        self.next_handle += 0x10;
        self.next_handle
    }

    /// The configuration, or `CUDA_ERROR_NOT_INITIALIZED` before `cuInit`.
    pub fn config(&self) -> Answer<&Config> {
        self.config.as_ref().ok_or(code::NOT_INITIALIZED)
    }

    /// The device number `ordinal` is valid (there is one device, 0, unless configured away).
    pub fn check_device(&self, ordinal: i32) -> Answer {
        let config = self.config()?;
        if ordinal == 0 && config.devices > 0 { Ok(()) } else { Err(code::INVALID_DEVICE) }
    }

    /// Whether `context` is a live context.
    pub fn is_context(&self, context: u64) -> bool {
        context != 0 && (self.primary.is_some_and(|(h, _)| h == context) || self.created.contains(&context))
    }

    /// Makes the device state exist (a context has just been made).
    pub fn open_device(&mut self) -> Answer {
        if self.device.is_none() {
            let capacity = self.config()?.memory_bytes;
            self.device = Some(Device {
                memory: Memory::new(capacity),
                modules: HashMap::new(),
                functions: HashMap::new(),
                streams: HashSet::new(),
                events: HashMap::new(),
                sticky: None,
            });
        }
        Ok(())
    }

    /// Drops the device state once no context is left.
    pub fn close_device_if_unused(&mut self) {
        if self.primary.is_none() && self.created.is_empty() {
            self.device = None;
        }
    }

    /// The device behind the calling thread's current context: `CUDA_ERROR_NOT_INITIALIZED` before
    /// `cuInit`, `CUDA_ERROR_INVALID_CONTEXT` without a live current context, and the sticky error
    /// of an earlier kernel fault.
    pub fn device(&mut self) -> Answer<&mut Device> {
        self.config()?;
        if !self.is_context(CURRENT.with(Cell::get)) {
            return Err(code::INVALID_CONTEXT);
        }
        let device = self.device.as_mut().ok_or(code::INVALID_CONTEXT)?;
        match device.sticky {
            Some(code) => Err(code),
            None => Ok(device),
        }
    }

    /// Records a fault's text for `kernelab_emu_last_fault` and returns the driver's code for it:
    /// a fault of a host-side call (a copy out of bounds, an allocation too large) is that call's
    /// error; a kernel's fault also makes the device's later calls fail (the caller's part).
    pub fn fault(&mut self, fault: &Fault) -> u32 {
        self.last_fault = fault.to_string();
        fault_code(&fault.kind)
    }

    /// Whether `stream` names a live stream: 0 (the legacy default stream), 1 (`CU_STREAM_LEGACY`)
    /// and 2 (`CU_STREAM_PER_THREAD`) always do.
    pub fn check_stream(&mut self, stream: u64) -> Answer {
        let device = self.device()?;
        if stream <= 2 || device.streams.contains(&stream) { Ok(()) } else { Err(code::INVALID_HANDLE) }
    }
}

/// The `CUresult` a real driver gives for a fault of this kind.
pub fn fault_code(kind: &FaultKind) -> u32 {
    match kind {
        FaultKind::OutOfBoundsGlobal { .. } | FaultKind::OutOfBoundsShared { .. } => code::ILLEGAL_ADDRESS,
        FaultKind::Misaligned { .. } => code::MISALIGNED_ADDRESS,
        FaultKind::InvalidLaunch(_) | FaultKind::InvalidAddress { .. } => code::INVALID_VALUE,
        FaultKind::OutOfMemory { .. } => code::OUT_OF_MEMORY,
        // A race, a divergent barrier, an instruction met at run time that is not emulated.
        _ => code::LAUNCH_FAILED,
    }
}
