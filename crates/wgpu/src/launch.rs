//! From a [`Kernel`] to a dispatch: which shader entry point, which buffers at which bindings,
//! the eight 32-bit words of parameters, and how many workgroups.

use kernelab_tensor::{DeviceBuffer, Error, Kernel, Result};

use crate::shaders::{ADAM, ELEMENTWISE, MATMUL, ROWWISE, Shader};
use crate::{WgpuBackend, WgpuBuffer};

/// The most workgroups of one dimension WebGPU guarantees; the shaders stride past it.
const MAX_GROUPS: usize = 65_535;

/// One dispatch, ready to record.
pub struct Dispatch<'a> {
    pub shader: Shader,
    pub entry: &'static str,
    pub params: [u32; 8],
    /// `(binding, buffer)`, exactly the bindings the entry point uses besides the params at 0.
    pub bindings: Vec<(u32, &'a wgpu::Buffer)>,
    pub groups: (u32, u32),
}

fn buffer(b: &dyn DeviceBuffer) -> Result<&wgpu::Buffer> {
    b.as_any().downcast_ref::<WgpuBuffer>().map(|w| &w.buffer).ok_or_else(|| Error::Device {
        backend: "wgpu".into(),
        message: format!("a buffer of another backend was passed to wgpu: {b:?}"),
    })
}

fn f(v: f32) -> u32 {
    v.to_bits()
}

fn u(v: usize) -> Result<u32> {
    u32::try_from(v)
        .map_err(|_| Error::InvalidArgument { op: "wgpu", why: format!("{v} exceeds the shaders' 32-bit indices") })
}

/// Workgroups for `n` elements at 256 per group, capped (the shader strides).
fn spread(n: usize) -> (u32, u32) {
    (n.div_ceil(256).clamp(1, MAX_GROUPS) as u32, 1)
}

/// One workgroup per row (or column), capped (the shader strides).
fn per_row(rows: usize) -> (u32, u32) {
    (rows.clamp(1, MAX_GROUPS) as u32, 1)
}

/// The dispatch for `kernel` with the matmul variant `variant` (others have one variant).
pub fn plan<'a>(kernel: &'a Kernel<'a>, variant: &str) -> Result<Option<Dispatch<'a>>> {
    let ew = |entry, n: usize, cols: usize, alpha: f32, bindings| -> Result<Dispatch<'a>> {
        Ok(Dispatch {
            shader: ELEMENTWISE,
            entry,
            params: [u(n)?, u(cols)?, f(alpha), 0, 0, 0, 0, 0],
            bindings,
            groups: spread(n),
        })
    };
    let rw =
        |entry, rows: usize, cols: usize, alpha: f32, accumulate: bool, groups, bindings| -> Result<Dispatch<'a>> {
            Ok(Dispatch {
                shader: ROWWISE,
                entry,
                params: [u(rows)?, u(cols)?, f(alpha), accumulate as u32, 0, 0, 0, 0],
                bindings,
                groups,
            })
        };
    if kernel.work() == 0 {
        return Ok(None);
    }
    let d = match kernel {
        Kernel::Fill { y, value } => ew("fill", y.len(), 1, *value, vec![(2, buffer(&**y)?)])?,
        Kernel::Relu { x, y } => ew("relu", y.len(), 1, 0.0, vec![(1, buffer(*x)?), (2, buffer(&**y)?)])?,
        Kernel::ReluBackward { x, dy, dx } => {
            ew("relu_backward", dx.len(), 1, 0.0, vec![(1, buffer(*x)?), (3, buffer(*dy)?), (2, buffer(&**dx)?)])?
        }
        Kernel::BiasAdd { x, bias, y, cols, .. } => {
            ew("bias_add", y.len(), *cols, 0.0, vec![(1, buffer(*x)?), (3, buffer(*bias)?), (2, buffer(&**y)?)])?
        }
        Kernel::BiasRelu { x, bias, y, cols, .. } => {
            ew("bias_relu", y.len(), *cols, 0.0, vec![(1, buffer(*x)?), (3, buffer(*bias)?), (2, buffer(&**y)?)])?
        }
        Kernel::Add { a, b, y } => {
            ew("add", y.len(), 1, 0.0, vec![(1, buffer(*a)?), (3, buffer(*b)?), (2, buffer(&**y)?)])?
        }
        Kernel::Scale { x, alpha, y } => ew("scale", y.len(), 1, *alpha, vec![(1, buffer(*x)?), (2, buffer(&**y)?)])?,
        Kernel::ScaleBy { x, s, alpha, y } => {
            ew("scale_by", y.len(), 1, *alpha, vec![(1, buffer(*x)?), (3, buffer(*s)?), (2, buffer(&**y)?)])?
        }
        Kernel::Axpy { alpha, x, y } => ew("axpy", y.len(), 1, *alpha, vec![(1, buffer(*x)?), (2, buffer(&**y)?)])?,
        Kernel::Adam { param, grad, m, v, step } => Dispatch {
            shader: ADAM,
            entry: "adam",
            params: [
                u(param.len())?,
                f(step.lr / step.bias_correction1()),
                f(1.0 / step.bias_correction2().sqrt()),
                f(step.beta1),
                f(step.beta2),
                f(step.eps),
                0,
                0,
            ],
            bindings: vec![(1, buffer(*grad)?), (2, buffer(&**param)?), (4, buffer(&**m)?), (5, buffer(&**v)?)],
            groups: spread(param.len()),
        },
        Kernel::ColSum { x, y, rows, cols, alpha, accumulate } => rw(
            "col_sum",
            *rows,
            *cols,
            *alpha,
            *accumulate,
            per_row(*cols),
            vec![(1, buffer(*x)?), (2, buffer(&**y)?)],
        )?,
        Kernel::Softmax { x, y, rows, cols } => {
            rw("softmax", *rows, *cols, 0.0, false, per_row(*rows), vec![(1, buffer(*x)?), (2, buffer(&**y)?)])?
        }
        Kernel::LogSoftmax { x, y, rows, cols } => {
            rw("log_softmax", *rows, *cols, 0.0, false, per_row(*rows), vec![(1, buffer(*x)?), (2, buffer(&**y)?)])?
        }
        Kernel::SoftmaxBackward { y, dy, dx, rows, cols } => {
            let b = vec![(1, buffer(*y)?), (3, buffer(*dy)?), (2, buffer(&**dx)?)];
            rw("softmax_backward", *rows, *cols, 0.0, false, per_row(*rows), b)?
        }
        Kernel::LogSoftmaxBackward { y, dy, dx, rows, cols } => {
            let b = vec![(1, buffer(*y)?), (3, buffer(*dy)?), (2, buffer(&**dx)?)];
            rw("log_softmax_backward", *rows, *cols, 0.0, false, per_row(*rows), b)?
        }
        Kernel::SoftmaxCrossEntropy { logits, labels, loss, grad, rows, cols } => {
            let b = vec![(1, buffer(*logits)?), (3, buffer(*labels)?), (2, buffer(&**grad)?), (4, buffer(&**loss)?)];
            rw("softmax_cross_entropy", *rows, *cols, 0.0, false, per_row(*rows), b)?
        }
        Kernel::KlDiv { logits, target, loss, grad, rows, cols, temperature } => {
            let b = vec![(1, buffer(*logits)?), (3, buffer(*target)?), (2, buffer(&**grad)?), (4, buffer(&**loss)?)];
            rw("kl_div", *rows, *cols, *temperature, false, per_row(*rows), b)?
        }
        Kernel::Matmul { a, b, c, gemm: g } => {
            let (entry, tile) = match variant {
                "naive" => ("matmul_naive", 16),
                "tiled" => ("matmul_tiled", 16),
                "vec4" => ("matmul_vec4", 64),
                _ => ("matmul_regblock", 64),
            };
            let groups = (g.n.div_ceil(tile), g.m.div_ceil(tile));
            if groups.0 > MAX_GROUPS || groups.1 > MAX_GROUPS {
                return Err(Error::InvalidArgument {
                    op: "matmul",
                    why: format!(
                        "{}×{} needs {groups:?} workgroups; WebGPU allows {MAX_GROUPS} per dimension",
                        g.m, g.n
                    ),
                });
            }
            Dispatch {
                shader: MATMUL,
                entry,
                params: [u(g.m)?, u(g.n)?, u(g.k)?, g.trans_a as u32, g.trans_b as u32, f(g.alpha), f(g.beta), 0],
                bindings: if entry == "matmul_vec4" {
                    // The vec4 views alias A and B (read-only, so WebGPU allows both).
                    vec![(1, buffer(*a)?), (3, buffer(*b)?), (2, buffer(&**c)?), (5, buffer(*a)?), (6, buffer(*b)?)]
                } else {
                    vec![(1, buffer(*a)?), (3, buffer(*b)?), (2, buffer(&**c)?)]
                },
                groups: (groups.0 as u32, groups.1 as u32),
            }
        }
    };
    Ok(Some(d))
}

impl WgpuBackend {
    /// Records one dispatch into the pending encoder.
    pub(crate) fn run(&self, d: Dispatch<'_>) -> Result<()> {
        let pipeline = self.pipeline(d.shader, d.entry)?;
        let bind_group =
            self.checked("dispatch", || {
                use wgpu::util::DeviceExt;
                let params = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("params"),
                    contents: bytemuck::cast_slice(&d.params),
                    usage: wgpu::BufferUsages::UNIFORM,
                });
                let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() }];
                entries.extend(d.bindings.iter().map(|(binding, buf)| wgpu::BindGroupEntry {
                    binding: *binding,
                    resource: buf.as_entire_binding(),
                }));
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(d.entry),
                    layout: &pipeline.get_bind_group_layout(0),
                    entries: &entries,
                })
            })?;
        self.record(|encoder, timestamp_writes| {
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(d.entry), timestamp_writes });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(d.groups.0, d.groups.1, 1);
        })
    }
}
