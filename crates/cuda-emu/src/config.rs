//! What the emulated device is, from the environment at `cuInit`:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `KERNELAB_EMU_DEVICES` | `0`: no device (`cuInit` answers `CUDA_ERROR_NO_DEVICE`, as on a machine without a GPU), `1`: one | `1` |
//! | `KERNELAB_EMU_MEMORY` | the device memory in bytes, or with a `K`, `M` or `G` suffix (powers of 1024) | `2G` |
//! | `KERNELAB_EMU_SANITIZE` | `0`: launches run without the sanitizer (races, divergent barriers unchecked) | `1` |

/// The emulated device's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub devices: u32,
    pub memory_bytes: u64,
    pub sanitize: bool,
}

impl Config {
    /// Reads the environment; `Err` names the variable and the value it could not read.
    pub fn from_env() -> Result<Config, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Config::from_values(
            var("KERNELAB_EMU_DEVICES").as_deref(),
            var("KERNELAB_EMU_MEMORY").as_deref(),
            var("KERNELAB_EMU_SANITIZE").as_deref(),
        )
    }

    /// The configuration from the three variables' values (`None`: unset).
    pub fn from_values(devices: Option<&str>, memory: Option<&str>, sanitize: Option<&str>) -> Result<Config, String> {
        let devices = match devices.map(str::trim) {
            None | Some("1") => 1,
            Some("0") => 0,
            Some(other) => return Err(format!("KERNELAB_EMU_DEVICES={other}: expected 0 or 1")),
        };
        let memory_bytes = match memory {
            None => 2 << 30,
            Some(text) => bytes(text).ok_or_else(|| {
                format!("KERNELAB_EMU_MEMORY={text}: expected a positive number of bytes, e.g. 268435456, 256M or 2G")
            })?,
        };
        let sanitize = match sanitize.map(str::trim) {
            None | Some("1") => true,
            Some("0") => false,
            Some(other) => return Err(format!("KERNELAB_EMU_SANITIZE={other}: expected 0 or 1")),
        };
        Ok(Config { devices, memory_bytes, sanitize })
    }
}

/// `123`, `64K`, `256M`, `2G` (powers of 1024) as bytes; `None` for anything else or zero.
fn bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last()? {
        (at, 'K' | 'k') => (&text[..at], 10),
        (at, 'M' | 'm') => (&text[..at], 20),
        (at, 'G' | 'g') => (&text[..at], 30),
        _ => (text, 0),
    };
    let n: u64 = digits.trim().parse().ok()?;
    n.checked_mul(1 << shift).filter(|&b| b > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values() {
        let default = Config::from_values(None, None, None).unwrap();
        assert_eq!(default, Config { devices: 1, memory_bytes: 2 << 30, sanitize: true });
        let set = Config::from_values(Some("0"), Some("256M"), Some("0")).unwrap();
        assert_eq!(set, Config { devices: 0, memory_bytes: 256 << 20, sanitize: false });
        assert_eq!(Config::from_values(None, Some("4096"), None).unwrap().memory_bytes, 4096);
        assert_eq!(Config::from_values(None, Some("3k"), None).unwrap().memory_bytes, 3072);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_values(None, Some("lots"), None).unwrap_err();
        assert!(err.starts_with("KERNELAB_EMU_MEMORY=lots"), "{err}");
        assert!(Config::from_values(None, Some("0"), None).is_err());
        assert!(Config::from_values(Some("2"), None, None).unwrap_err().contains("KERNELAB_EMU_DEVICES=2"));
        assert!(Config::from_values(None, None, Some("no")).unwrap_err().contains("KERNELAB_EMU_SANITIZE"));
    }
}
