//! Every WGSL file parses and validates with naga: no GPU needed.

use kernelab_wgpu::shaders::ALL;

#[test]
fn every_shader_validates() {
    for shader in ALL {
        let module = naga::front::wgsl::parse_str(shader.source)
            .unwrap_or_else(|e| panic!("{}: {}", shader.file, e.emit_to_string(shader.source)));
        let mut validator =
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
        if let Err(e) = validator.validate(&module) {
            panic!("{}: {}", shader.file, e.emit_to_string(shader.source));
        }
        assert!(!module.entry_points.is_empty(), "{} has no entry point", shader.file);
    }
}

#[test]
fn every_shader_file_starts_with_a_header_naming_its_bindings() {
    for shader in ALL {
        let header: String = shader.source.lines().take_while(|l| l.starts_with("//")).collect::<Vec<_>>().join("\n");
        assert!(header.contains("Bindings") && header.contains("ntry point"), "{} lacks its header", shader.file);
    }
}
