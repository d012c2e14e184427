//! From a [`Kernel`] and its variant's [`Code`] to a recorded dispatch: the pipeline of the
//! entry's module and entry point, the op's params and buffers at the bindings of its
//! [convention](crate::convention), and the workgroups its geometry asks for. Built-in and loaded
//! kernels take this one path.

use kernelab_tensor::{Kernel, Result};

use crate::convention::{self, Arguments};
use crate::table::Code;
use crate::{WgpuBackend, own};

impl WgpuBackend {
    /// Records one launch of `kernel` with the code of the variant `name` into the pending
    /// encoder (nothing when the kernel has no work).
    pub(crate) fn run(&self, kernel: &Kernel<'_>, name: &str, code: Code) -> Result<()> {
        if kernel.work() == 0 {
            return Ok(());
        }
        let op = kernel.op();
        let Arguments { params, buffers, dims } = convention::arguments(kernel)?;
        let groups = convention::groups(op, &code.geometry, &dims, name)?;
        let (pipeline, layout) = self.pipeline(op, code.shader, code.entry)?;
        let slots = convention::slots(op);
        debug_assert_eq!(slots.len(), buffers.len() + 1, "{op}: the arguments do not fill the convention");
        let buffers = buffers.into_iter().map(own).collect::<Result<Vec<_>>>()?;
        let bind_group =
            self.checked("dispatch", || {
                use wgpu::util::DeviceExt;
                let params = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("params"),
                    contents: bytemuck::cast_slice(&params),
                    usage: wgpu::BufferUsages::UNIFORM,
                });
                let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() }];
                entries.extend(slots[1..].iter().zip(&buffers).map(|(slot, buf)| wgpu::BindGroupEntry {
                    binding: slot.binding,
                    resource: buf.as_entire_binding(),
                }));
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(code.entry),
                    layout: &layout,
                    entries: &entries,
                })
            })?;
        self.record(|encoder, timestamp_writes| {
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(code.entry), timestamp_writes });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups.0, groups.1, 1);
        })
    }
}
