//! The per-precision budget catches a WGSL f16 kernel that lies about its accumulation: the f16→f16
//! regblock (its sums carried in f16) listed as the f16→f32 `f16-regblock` must fail at K = 2048,
//! while the honest `f16-regblock` passes the same case and `f16-regblock-f16acc` passes its own,
//! larger, f16→f16 budget. Needs an adapter with `shader-f16` (lavapipe has it).

use kernelab::bench::case::{Case, Knobs};
use kernelab::bench::check::Check;
use kernelab::bench::conformance::check_case;
use kernelab::tensor::{Backend, BackendKind, DeviceBuffer, DeviceInfo, Dtype, Kernel, Precision, Variant};
use kernelab::{Device, Op, Result};

/// The WGPU backend with one change: its variant `f16-regblock` (which claims f32 accumulation)
/// runs the code of `f16-regblock-f16acc`, which sums in f16.
#[derive(Debug)]
struct SumsInF16(Device);

impl Backend for SumsInF16 {
    fn kind(&self) -> BackendKind {
        BackendKind::Wgpu
    }
    fn info(&self) -> DeviceInfo {
        DeviceInfo { name: format!("{} (f16-regblock sums in f16)", self.0.info().name), ..DeviceInfo::default() }
    }
    fn variants(&self, op: Op) -> Vec<Variant> {
        self.0.variants(op)
    }
    fn alloc(&self, len: usize) -> Result<Box<dyn DeviceBuffer>> {
        self.0.backend().alloc(len)
    }
    fn alloc_as(&self, len: usize, dtype: Dtype) -> Result<Box<dyn DeviceBuffer>> {
        self.0.backend().alloc_as(len, dtype)
    }
    fn upload(&self, src: &[f32], dst: &mut dyn DeviceBuffer) -> Result<()> {
        self.0.backend().upload(src, dst)
    }
    fn download(&self, src: &dyn DeviceBuffer, dst: &mut [f32]) -> Result<()> {
        self.0.backend().download(src, dst)
    }
    fn synchronize(&self) -> Result<()> {
        self.0.backend().synchronize()
    }
    fn launch(&self, kernel: Kernel<'_>, variant: Option<&str>) -> Result<()> {
        let variant = if variant == Some("f16-regblock") { Some("f16-regblock-f16acc") } else { variant };
        self.0.backend().launch(kernel, variant)
    }
}

/// The WGPU device when it has the f16 variants; `None` (skipped, said why) otherwise, unless
/// `KERNELAB_REQUIRE` names wgpu.
fn wgpu_with_f16() -> Option<Device> {
    let required = BackendKind::Wgpu.is_required();
    let device = match kernelab::backends::open(BackendKind::Wgpu) {
        Ok(d) => d,
        Err(e) if required => panic!("{e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            return None;
        }
    };
    match device.variant(Op::Matmul, "f16-regblock").map(|v| v.unavailable) {
        Ok(None) => Some(device),
        Ok(Some(why)) => {
            eprintln!("skipped: f16-regblock is unavailable here: {why}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

fn run(device: &Device, case: &Case, variant: &str) -> Check {
    let check = check_case(device, case, variant).unwrap_or_else(|e| panic!("{variant}: {e}"));
    eprintln!(
        "{} {variant} {}: max rel err {:.2e}, {:.2} of budget, {} over",
        device.label(),
        case.label(),
        check.max_rel_err,
        check.worst_budget_ratio,
        check.failures
    );
    check
}

#[test]
fn an_f16_matmul_summing_in_f16_while_claiming_f32_fails_its_budget_at_k_2048() {
    let Some(device) = wgpu_with_f16() else { return };
    let f16_f32 = Precision::new(Dtype::F16, Dtype::F32);
    let f16_f16 = Precision::new(Dtype::F16, Dtype::F16);
    let case = Case::new(Op::Matmul, &[64, 64, 2048], Knobs::default(), 21).unwrap();

    let honest = run(&device, &case.clone().with_precision(f16_f32), "f16-regblock");
    assert!(honest.ok(), "the honest f16→f32 rung fails its own budget: {}", honest.failure().unwrap_or_default());

    let liar = Device::new(SumsInF16(device.clone()));
    let caught = run(&liar, &case.clone().with_precision(f16_f32), "f16-regblock");
    assert!(!caught.ok() && caught.failures > 0, "f16 sums passed an f32-accumulation budget at K = 2048");
    assert!(caught.worst_budget_ratio > 2.0, "caught only narrowly: {:.2} of budget", caught.worst_budget_ratio);

    let own = run(&device, &case.with_precision(f16_f16), "f16-regblock-f16acc");
    assert!(own.ok(), "f16-regblock-f16acc fails its f16→f16 budget: {}", own.failure().unwrap_or_default());
}
