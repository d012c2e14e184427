//! Compiled pipelines, cached by the module's source and the entry point, never by the entry
//! point's name alone: a loaded file whose entry is called `matmul_tiled` gets its own pipeline,
//! not the built-in one. Every pipeline of an op shares one explicit layout, built from the op's
//! [convention](crate::convention), so an entry point may use any subset of the op's bindings and
//! every launch binds them all.

use std::collections::HashMap;

use kernelab_tensor::{Op, Result};

use crate::WgpuBackend;
use crate::convention::{self, Access};
use crate::shaders::Shader;

/// What identifies a pipeline: the source text (every source is `'static` and never freed, so its
/// address and length identify its bytes: two different texts never share a key), the entry point
/// and the op whose layout it was built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    source: (usize, usize),
    entry: &'static str,
    op: Op,
}

impl Key {
    pub fn new(shader: Shader, entry: &'static str, op: Op) -> Self {
        Self { source: (shader.source.as_ptr() as usize, shader.source.len()), entry, op }
    }
}

/// The pipelines compiled so far, and one bind group layout per op.
#[derive(Default)]
pub struct Cache {
    pipelines: HashMap<Key, wgpu::ComputePipeline>,
    layouts: HashMap<Op, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>,
}

impl WgpuBackend {
    /// Compiles a WGSL file, reporting the compiler's message with the file's name.
    pub fn compile(&self, shader: Shader) -> Result<wgpu::ShaderModule> {
        self.checked(shader.file, || {
            self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.file),
                source: wgpu::ShaderSource::Wgsl(shader.source.into()),
            })
        })
        .map_err(|e| crate::device_error(format!("shader {} failed to compile: {e}", shader.file)))
    }

    /// The pipeline of `entry` in `shader` for `op` and the op's bind group layout, compiled on
    /// first use.
    pub(crate) fn pipeline(
        &self,
        op: Op,
        shader: Shader,
        entry: &'static str,
    ) -> Result<(wgpu::ComputePipeline, wgpu::BindGroupLayout)> {
        let mut cache = self.pipelines.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (group, layout) = match cache.layouts.get(&op) {
            Some(found) => found.clone(),
            None => {
                let made = self.layout(op)?;
                cache.layouts.insert(op, made.clone());
                made
            }
        };
        let key = Key::new(shader, entry, op);
        if let Some(p) = cache.pipelines.get(&key) {
            return Ok((p.clone(), group));
        }
        let module = self.compile(shader)?;
        let pipeline = self.checked(entry, || {
            self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        })?;
        cache.pipelines.insert(key, pipeline.clone());
        Ok((pipeline, group))
    }

    /// The bind group and pipeline layouts of `op`: one entry per slot of its convention.
    fn layout(&self, op: Op) -> Result<(wgpu::BindGroupLayout, wgpu::PipelineLayout)> {
        let entries: Vec<wgpu::BindGroupLayoutEntry> = convention::slots(op)
            .iter()
            .map(|slot| wgpu::BindGroupLayoutEntry {
                binding: slot.binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match slot.access {
                        Access::Uniform => wgpu::BufferBindingType::Uniform,
                        Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        self.checked(op.name(), || {
            let group = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(op.name()),
                entries: &entries,
            });
            let layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(op.name()),
                bind_group_layouts: &[Some(&group)],
                immediate_size: 0,
            });
            (group, layout)
        })
    }
}
