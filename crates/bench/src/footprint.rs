//! How much memory a benchmark run needs at once, and the refusal of a run that does not fit.

use kernelab_tensor::Result;

use crate::runner::Spec;

/// Bytes a spec needs at once, over-estimated: its values (inputs and outputs) on the host, on the
/// device and in the f64 reference with its error budgets, and the fresh inputs of the re-check
/// after its timing (4 + 4 + 16 + 4 bytes a value); `None` when the count does not fit in 64 bits.
pub fn footprint(spec: &Spec) -> Option<u64> {
    let d: Vec<u64> = spec.dims.iter().map(|&d| d as u64).collect();
    let values = match (spec.op.family(), d.as_slice()) {
        (kernelab_tensor::OpFamily::Matmul, [m, n, k]) => {
            m.checked_mul(*k)?.checked_add(k.checked_mul(*n)?)?.checked_add(m.checked_mul(*n)?)?
        }
        (_, dims) => dims.iter().try_fold(1u64, |a, &x| a.checked_mul(x))?.checked_mul(4)?,
    };
    values.checked_mul(28)
}

/// Refuses, with the numbers, a spec whose footprint exceeds the memory available (or
/// overflows), and a run whose shapes together do not fit: the rounds keep every shape's inputs
/// and outputs allocated (on the host and on its device, 8 bytes a value) while the largest
/// one's f64 reference is made.
pub(crate) fn check_footprints(specs: &[Spec]) -> Result<()> {
    let available = kernelab_tensor::memory::available();
    let (mut held, mut largest) = (0u64, 0u64);
    for spec in specs {
        let shape = crate::table::dims_text(&spec.dims);
        let refuse =
            |why: String| Err(kernelab_tensor::Error::BadShape { op: spec.op.name(), shape: spec.dims.clone(), why });
        let need = match (footprint(spec), available) {
            (None, _) => return refuse(format!("{shape} holds more values than 64-bit sizes can count")),
            (Some(need), Some(have)) if need > have => {
                return refuse(format!(
                    "{shape} needs about {:.1} GB at once (inputs, outputs, the f64 reference), and this machine has \
                     {:.1} GB available",
                    need as f64 / 1e9,
                    have as f64 / 1e9
                ));
            }
            (Some(need), _) => need,
        };
        (held, largest) = (held.saturating_add(need / 7 * 2), largest.max(need));
    }
    match available {
        Some(have) if held.saturating_add(largest) > have => Err(kernelab_tensor::Error::InvalidArgument {
            op: "bench",
            why: format!(
                "the {} shapes together need about {:.1} GB while their rows are timed in rounds (every shape's \
                 inputs and outputs stay allocated), and this machine has {:.1} GB available; split them over \
                 several runs",
                specs.len(),
                held.saturating_add(largest) as f64 / 1e9,
                have as f64 / 1e9
            ),
        }),
        _ => Ok(()),
    }
}
