//! What a model spec costs before any layer is built: its parameter count in checked arithmetic,
//! and the bytes it needs to be held or trained, held against the memory this machine has left
//! (`MemAvailable`). A spec such as `784-18446744073709551615-10` or `784-30000000-10` is then a
//! clear error with the numbers, not a capacity-overflow panic or an allocator's abort.

use kernelab_tensor::memory::{available, human};
use kernelab_tensor::{Error, Result};

/// The scalar parameters of an MLP of `widths`: `Σᵢ wᵢ₊₁·(wᵢ + 1)` (each layer's weight and bias);
/// `None` when the count does not fit in 64 bits.
pub fn parameter_count(widths: &[usize]) -> Option<u64> {
    widths.windows(2).try_fold(0u64, |sum, w| {
        let (inputs, outputs) = (w[0] as u64, w[1] as u64);
        sum.checked_add(outputs.checked_mul(inputs.checked_add(1)?)?)
    })
}

/// Bytes to build a model of `widths` (over-estimated): 8 a parameter, the initial values on the
/// host and their copy on the device.
pub fn build_bytes(widths: &[usize]) -> Option<u64> {
    parameter_count(widths)?.checked_mul(8)
}

/// Bytes one replica of `widths` needs to train at `batch` rows a step (over-estimated): 16 a
/// parameter (its value, its gradient, Adam's two moments) and, for every row of the batch, 16 a
/// width (each layer's input, pre-activation, activation and their gradients: 4 f32 values).
pub fn training_bytes(widths: &[usize], batch: usize) -> Option<u64> {
    let parameters = parameter_count(widths)?.checked_mul(16)?;
    let values = widths.iter().try_fold(0u64, |sum, &w| sum.checked_add(w as u64))?;
    let activations = values.checked_mul(batch as u64)?.checked_mul(16)?;
    parameters.checked_add(activations)
}

/// Bytes a frozen model of `widths` needs to run forward on `batch` rows (over-estimated): 4 a
/// parameter, and 8 a width for every row (each layer's output and its pre-activation).
pub fn inference_bytes(widths: &[usize], batch: usize) -> Option<u64> {
    let parameters = parameter_count(widths)?.checked_mul(4)?;
    let values = widths.iter().try_fold(0u64, |sum, &w| sum.checked_add(w as u64))?;
    parameters.checked_add(values.checked_mul(batch as u64)?.checked_mul(8)?)
}

/// Refuses `need` bytes for `what` (which names the model and says what the bytes hold) when it
/// overflows or exceeds the memory available; passes where the system does not say.
pub fn check_fits(what: &str, widths: &[usize], need: Option<u64>) -> Result<()> {
    let refuse = |why: String| Err(Error::InvalidArgument { op: "model", why });
    let Some(count) = parameter_count(widths) else {
        return refuse(format!("{what}: the parameter count overflows 64 bits"));
    };
    match (need, available()) {
        (None, _) => refuse(format!("{what}: {count} parameters, whose bytes overflow 64 bits")),
        (Some(need), Some(have)) if need > have => refuse(format!(
            "{what}: {count} parameters need about {}, and this machine has {} available",
            human(need),
            human(have)
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_weights_and_biases() {
        assert_eq!(parameter_count(&[784, 128, 10]), Some(784 * 128 + 128 + 128 * 10 + 10));
        assert_eq!(parameter_count(&[784, usize::MAX, 10]), None);
        assert_eq!(training_bytes(&[4, 3], 2), Some(15 * 16 + 7 * 2 * 16));
        assert_eq!(inference_bytes(&[4, 3], 2), Some(15 * 4 + 7 * 2 * 8));
        assert_eq!(build_bytes(&[4, 3]), Some(120));
    }

    #[test]
    fn sizes_past_the_memory_are_refused_with_the_numbers() {
        let widths = [784, 30_000_000, 10];
        let need = training_bytes(&widths, 64);
        assert_eq!(need, Some(23_850_000_010 * 16 + 64 * 30_000_794 * 16));
        if available().is_some_and(|have| have < 412_000_000_000) {
            let err = check_fits("model 784-30000000-10", &widths, need).unwrap_err().to_string();
            assert!(
                err.contains("model 784-30000000-10: 23850000010 parameters need about 412.3 GB, and this machine has"),
                "{err}"
            );
        }
        let huge = [784, usize::MAX, 10];
        let err = check_fits("model X", &huge, training_bytes(&huge, 64)).unwrap_err().to_string();
        assert!(err.contains("model X: the parameter count overflows 64 bits"), "{err}");
        let big = [1 << 31, 1 << 31];
        let err = check_fits("model Y", &big, training_bytes(&big, 64)).unwrap_err().to_string();
        assert!(err.contains("4611686020574871552 parameters, whose bytes overflow 64 bits"), "{err}");
        assert!(check_fits("model Z", &[784, 128, 10], training_bytes(&[784, 128, 10], 64)).is_ok());
    }
}
