//! The WGPU backend's failures are errors with a file or a limit named, never panics.

mod common;

use common::backend;

use kernelab_tensor::Backend;
use kernelab_wgpu::shaders::Shader;

#[test]
fn a_shader_that_fails_to_compile_names_its_file_and_the_compiler_message() {
    let Some(b) = backend() else { return };
    let broken =
        Shader { file: "shaders/broken.wgsl", source: "@compute @workgroup_size(1) fn main() { let x: f32 = ; }" };
    let err = b.compile(broken).unwrap_err().to_string();
    assert!(err.contains("shaders/broken.wgsl") && err.contains("failed to compile"), "{err}");
    // The device is still usable afterwards.
    assert!(b.alloc(4).is_ok());
}

#[test]
fn a_buffer_over_the_binding_limit_names_the_limit() {
    let Some(b) = backend() else { return };
    let err = b.alloc(usize::MAX / 8).unwrap_err().to_string();
    assert!(err.contains("exceeds this adapter's largest storage binding"), "{err}");
}

#[test]
fn freed_buffers_are_reused() {
    let Some(b) = backend() else { return };
    let first = b.alloc(1000).unwrap();
    assert_eq!(b.pooled_bytes(), 0);
    drop(first);
    assert_eq!(b.pooled_bytes(), 4000, "a dropped buffer goes back to the pool");
    let mut again = b.alloc(1000).unwrap();
    assert_eq!(b.pooled_bytes(), 0, "and the next allocation of its length takes it");
    b.upload(&[2.5; 1000], &mut *again).unwrap();
    let mut back = vec![0.0; 1000];
    b.download(&*again, &mut back).unwrap();
    assert!(back.iter().all(|&v| v == 2.5));
}

/// After the device is lost, wgpu still accepts queued work (an upload, an allocation), and the
/// first readback reports the loss as an error: nothing hangs, nothing panics.
#[test]
fn a_lost_device_gives_errors_not_hangs() {
    let Some(b) = backend() else { return };
    let mut buf = b.alloc(16).unwrap();
    b.lose_device();
    let _ = b.upload(&[1.0; 16], &mut *buf);
    let _ = b.alloc(1 << 20);
    let mut back = vec![0.0; 16];
    let err = b.download(&*buf, &mut back).unwrap_err();
    assert!(matches!(err, kernelab_tensor::Error::Device { .. }), "{err:?}");
    assert!(err.to_string().contains("wgpu device error"), "{err}");
}
