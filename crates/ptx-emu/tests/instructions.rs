//! Instruction-level tests: each operation on edge values (NaN, ±inf, −0, large integers,
//! rounding), run as a one-thread kernel that stores its result.

mod common;

use kernelab_ptx_emu::{Memory, Module};

/// Runs `body` in one thread (registers %f0-7 .f32, %r0-7 .b32, %rd0-7 .b64, %p0-3 .pred, %h0-3
/// .b16, %out
/// the address of an 8-byte output) and returns the output's 8 bytes as a u64.
fn eval(body: &str) -> u64 {
    let text = format!(
        ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry t(.param .u64 t_out)\n{{\n\
         .reg .f32 %f<8>;\n.reg .b32 %r<8>;\n.reg .b64 %rd<8>;\n.reg .pred %p<4>;\n.reg .b16 %h<4>;\n.reg .b64 %out;\n\
         ld.param.u64 %out, [t_out];\n{body}\nret;\n}}\n"
    );
    let mut mem = Memory::new(1 << 16);
    let out = mem.alloc(8).unwrap();
    common::run(&text, "t", [1, 1, 1], [1, 1, 1], &[common::Arg::Ptr(out)], &mut mem, true)
        .unwrap_or_else(|f| panic!("{f}\n{body}"));
    let mut b = [0u8; 8];
    mem.read(out, &mut b).unwrap();
    u64::from_le_bytes(b)
}

/// `op` applied to f32 operands (given as bit patterns), the f32 result's bits.
fn f32_op(op: &str, args: &[u32]) -> u32 {
    let mut body = String::new();
    for (i, a) in args.iter().enumerate() {
        body += &format!("mov.f32 %f{}, 0f{a:08X};\n", i + 1);
    }
    let operands: Vec<String> = (1..=args.len()).map(|i| format!("%f{i}")).collect();
    body += &format!("{op} %f0, {};\nst.global.f32 [%out], %f0;", operands.join(", "));
    eval(&body) as u32
}

fn fop(op: &str, args: &[f32]) -> f32 {
    f32::from_bits(f32_op(op, &args.iter().map(|a| a.to_bits()).collect::<Vec<_>>()))
}

/// `op` on .u32/.s32 operands, the 32-bit result.
fn int_op(op: &str, args: &[u32]) -> u32 {
    let operands: Vec<String> = args.iter().map(|a| format!("{a}")).collect();
    eval(&format!("{op} %r0, {};\nst.global.u32 [%out], %r0;", operands.join(", "))) as u32
}

const INF: f32 = f32::INFINITY;

#[test]
fn f32_add_mul_round_to_nearest_even_and_keep_special_values() {
    assert!(fop("add.f32", &[INF, -INF]).is_nan());
    assert_eq!(fop("mul.f32", &[1e38, 10.0]), INF);
    assert_eq!(fop("add.f32", &[-0.0, -0.0]).to_bits(), (-0.0f32).to_bits());
    assert_eq!(fop("add.rn.f32", &[1.0, f32::EPSILON / 2.0]), 1.0, "a tie rounds to even");
    assert_eq!(fop("sub.f32", &[1.0, 1.0]).to_bits(), 0, "x - x is +0");
    assert_eq!(fop("mul.rn.f32", &[-0.0, 5.0]).to_bits(), (-0.0f32).to_bits());
}

#[test]
fn fma_rounds_once() {
    let (a, b) = (1.0 + f32::EPSILON, 1.0 - f32::EPSILON);
    // a·b = 1 - 2^-46 exactly; fused, minus 1 it is -2^-46; unfused it would round to 0.
    assert_eq!(fop("fma.rn.f32", &[a, b, -1.0]), -(2.0f32).powi(-46));
    assert!(fop("fma.rn.f32", &[INF, 0.0, 1.0]).is_nan());
}

#[test]
fn div_rcp_sqrt_are_exactly_rounded() {
    assert_eq!(f32_op("div.rn.f32", &[1.0f32.to_bits(), 3.0f32.to_bits()]), 0x3EAA_AAAB);
    assert_eq!(fop("div.rn.f32", &[1.0, 0.0]), INF);
    assert!(fop("div.rn.f32", &[0.0, 0.0]).is_nan());
    assert_eq!(fop("rcp.rn.f32", &[-0.0]), -INF);
    assert_eq!(fop("rcp.rn.f32", &[4.0]), 0.25);
    assert_eq!(f32_op("sqrt.rn.f32", &[2.0f32.to_bits()]), 0x3FB5_04F3);
    assert!(fop("sqrt.rn.f32", &[-1.0]).is_nan());
    assert_eq!(fop("sqrt.rn.f32", &[-0.0]).to_bits(), (-0.0f32).to_bits());
}

#[test]
fn ex2_and_lg2_within_their_documented_error() {
    assert_eq!(fop("ex2.approx.f32", &[-INF]), 0.0);
    assert_eq!(fop("ex2.approx.f32", &[INF]), INF);
    assert_eq!(fop("ex2.approx.f32", &[128.0]), INF);
    assert_eq!(fop("ex2.approx.f32", &[-149.0]).to_bits(), 1, "the smallest subnormal");
    assert!(fop("ex2.approx.f32", &[f32::NAN]).is_nan());
    let r = fop("ex2.approx.f32", &[0.5]);
    assert!((r.to_bits() as i64 - std::f32::consts::SQRT_2.to_bits() as i64).abs() <= 2, "{r}");
    assert_eq!(fop("lg2.approx.f32", &[0.0]), -INF);
    assert_eq!(fop("lg2.approx.f32", &[8.0]), 3.0);
    assert_eq!(fop("lg2.approx.f32", &[INF]), INF);
    assert!(fop("lg2.approx.f32", &[-1.0]).is_nan());
    let r = fop("lg2.approx.f32", &[10.0]) as f64;
    assert!((r - 10f64.log2()).abs() < 2f64.powf(-22.6), "{r}");
}

#[test]
fn max_min_and_their_nan_forms() {
    assert_eq!(fop("max.f32", &[f32::NAN, 1.0]), 1.0);
    assert_eq!(fop("max.f32", &[1.0, f32::NAN]), 1.0);
    assert!(fop("max.NaN.f32", &[f32::NAN, 1.0]).is_nan());
    assert!(fop("max.NaN.f32", &[1.0, f32::NAN]).is_nan());
    assert_eq!(fop("max.f32", &[-0.0, 0.0]).to_bits(), 0);
    assert_eq!(fop("min.f32", &[0.0, -0.0]).to_bits(), (-0.0f32).to_bits());
    assert_eq!(fop("max.NaN.f32", &[-3.0, 0.0]), 0.0);
    assert_eq!(fop("min.f32", &[-INF, 3.0]), -INF);
}

#[test]
fn integer_arithmetic_wraps_and_widens() {
    assert_eq!(int_op("add.u32", &[u32::MAX, 2]), 1);
    assert_eq!(int_op("sub.u32", &[0, 1]), u32::MAX);
    assert_eq!(int_op("mul.lo.u32", &[0x1_0001, 0x1_0001]), 0x2_0001);
    assert_eq!(int_op("mad.lo.u32", &[0x8000_0000, 2, 7]), 7);
    assert_eq!(int_op("rem.u32", &[17, 5]), 2);
    assert_eq!(int_op("div.u32", &[17, 0]), u32::MAX, "division by zero: all ones, no trap");
    assert_eq!(int_op("min.u32", &[3, u32::MAX]), 3);
    assert_eq!(int_op("min.s32", &[3, u32::MAX]), u32::MAX, "-1 is the signed minimum");
    assert_eq!(int_op("shl.b32", &[1, 31]), 0x8000_0000);
    assert_eq!(int_op("shl.b32", &[1, 33]), 0, "shifts past the width give 0");
    assert_eq!(int_op("shr.u32", &[0x8000_0000, 31]), 1);
    assert_eq!(int_op("shr.u32", &[0x8000_0000, 32]), 0);
    assert_eq!(int_op("shr.s32", &[0x8000_0000, 40]), u32::MAX, "arithmetic shift fills with the sign");
    assert_eq!(int_op("and.b32", &[0xF0F0, 0xFF00]), 0xF000);
    assert_eq!(int_op("xor.b32", &[0xF0F0, 0xFF00]), 0x0FF0);
    assert_eq!(int_op("or.b32", &[0xF0F0, 0x0F00]), 0xFFF0);
    assert_eq!(eval("not.b32 %r0, 0;\nst.global.u32 [%out], %r0;") as u32, u32::MAX);
    let wide = eval("mul.wide.u32 %rd0, 4294967295, 4294967295;\nst.global.u64 [%out], %rd0;");
    assert_eq!(wide, 0xFFFF_FFFE_0000_0001);
    let wide = eval("mul.wide.s32 %rd0, -1, 2;\nst.global.u64 [%out], %rd0;");
    assert_eq!(wide as i64, -2);
    let wide = eval("mov.b64 %rd1, 4294967296;\nmad.wide.u32 %rd0, 65536, 65536, %rd1;\nst.global.u64 [%out], %rd0;");
    assert_eq!(wide, 1 << 33);
    assert_eq!(eval("mov.u32 %r1, 0x10;\nshl.b64 %rd0, 3, %r1;\nst.global.u64 [%out], %rd0;"), 3 << 16);
}

#[test]
fn setp_orders_nan_and_signs() {
    let setp = |cmp: &str, a: &str, b: &str| {
        eval(&format!("mov.u32 %r0, 7;\nsetp.{cmp} %p0, {a}, {b};\n@!%p0 mov.u32 %r0, 3;\nst.global.u32 [%out], %r0;"))
            == 7
    };
    assert!(!setp("lt.f32", "0f7FC00000", "0f3F800000"), "ordered: NaN is false");
    assert!(setp("neu.f32", "0f7FC00000", "0f7FC00000"), "unordered: NaN is true");
    assert!(!setp("ne.f32", "0f7FC00000", "0f3F800000"));
    assert!(setp("lt.f32", "0fFF800000", "0fFF7FFFFF"), "-inf < lowest");
    assert!(!setp("lt.f32", "0f80000000", "0f00000000"), "-0 == +0");
    assert!(!setp("lt.u32", "4294967295", "1"));
    assert!(setp("lt.s32", "4294967295", "1"), "-1 < 1 signed");
    assert!(setp("ge.u32", "5", "5"));
    let and = eval(
        "setp.eq.u32 %p1, 1, 1;\nsetp.lt.and.u32 %p0, 1, 2, !%p1;\nselp.u32 %r0, 1, 2, %p0;\nst.global.u32 [%out], %r0;",
    );
    assert_eq!(and as u32, 2, "true and not true");
    let or = eval(
        "setp.eq.u32 %p1, 1, 0;\nsetp.ge.or.u32 %p0, 1, 2, %p1;\nselp.f32 %f0, 0f3F800000, 0f40000000, %p0;\nst.global.f32 [%out], %f0;",
    );
    assert_eq!(f32::from_bits(or as u32), 2.0);
    let pred = eval(
        "setp.eq.u32 %p1, 1, 1;\nsetp.eq.u32 %p2, 1, 0;\nand.pred %p0, %p1, %p2;\nselp.u32 %r0, 1, 2, %p0;\nst.global.u32 [%out], %r0;",
    );
    assert_eq!(pred as u32, 2);
}

#[test]
fn conversions_saturate_and_round() {
    let cvt = |op: &str, v: f32| eval(&format!("{op} %r0, 0f{:08X};\nst.global.u32 [%out], %r0;", v.to_bits())) as u32;
    assert_eq!(cvt("cvt.rzi.u32.f32", 3.7), 3);
    assert_eq!(cvt("cvt.rzi.u32.f32", -1.5), 0, "saturates at 0");
    assert_eq!(cvt("cvt.rzi.u32.f32", f32::NAN), 0);
    assert_eq!(cvt("cvt.rzi.u32.f32", 1e10), u32::MAX);
    assert_eq!(cvt("cvt.rni.s32.f32", -2.5) as i32, -2, "ties to even");
    let to_f = eval("cvt.rn.f32.u32 %f0, 16777217;\nst.global.f32 [%out], %f0;") as u32;
    assert_eq!(f32::from_bits(to_f), 16777216.0);
    let wide = eval("cvt.u64.u32 %rd0, 4294967295;\nst.global.u64 [%out], %rd0;");
    assert_eq!(wide, 0xFFFF_FFFF);
    let signed = eval("cvt.s64.s32 %rd0, 4294967295;\nst.global.u64 [%out], %rd0;");
    assert_eq!(signed as i64, -1);
}

#[test]
fn narrow_float_conversions() {
    let pair = |op: &str, a: f32, b: f32| {
        eval(&format!("{op} %r0, 0f{:08X}, 0f{:08X};\nst.global.u32 [%out], %r0;", a.to_bits(), b.to_bits())) as u32
    };
    // The first source goes to the upper half, the second to the lower (the PTX ISA's order).
    assert_eq!(pair("cvt.rn.bf16x2.f32", 1.0, -2.0), 0x3f80_c000);
    assert_eq!(pair("cvt.rn.f16x2.f32", 1.0, -2.0), 0x3c00_c000);
    assert_eq!(pair("cvt.rn.bf16x2.f32", 1.0 + 3.0 / 256.0, f32::INFINITY), 0x3f82_7f80, "to nearest even");
    let one = |body: &str| eval(&format!("mov.u32 %r0, 0;\nst.global.u32 [%out], %r0;\n{body}")) as u32;
    let narrow = |op: &str, v: f32| one(&format!("{op} %h0, 0f{:08X};\nst.global.b16 [%out], %h0;", v.to_bits()));
    assert_eq!(narrow("cvt.rn.f16.f32", 65520.0), 0x7c00, "65520 overflows f16");
    assert_eq!(narrow("cvt.rn.f16.f32", 65519.0), 0x7bff);
    assert_eq!(narrow("cvt.rn.bf16.f32", -2.5), 0xc020);
    let widen = |op: &str, h: u16| {
        let body = format!("mov.u32 %r1, {h};\nst.global.u32 [%out], %r1;\nld.global.b16 %h1, [%out];\n{op} %f0, %h1;");
        f32::from_bits(eval(&format!("{body}\nst.global.f32 [%out], %f0;")) as u32)
    };
    assert_eq!(widen("cvt.f32.f16", 0x0001), 2f32.powi(-24), "f16 subnormals are kept");
    assert_eq!(widen("cvt.f32.f16", 0xfbff), -65504.0);
    assert_eq!(widen("cvt.f32.bf16", 0x3f81), 1.0 + 1.0 / 128.0);
    let tf32 = |v: u32| one(&format!("cvt.rna.tf32.f32 %r0, 0f{v:08X};\nst.global.u32 [%out], %r0;"));
    assert_eq!(tf32(0x3f80_1000), 0x3f80_2000, "a tie rounds away from zero");
    assert_eq!(tf32(0x3f80_0fff), 0x3f80_0000);
}

#[test]
fn pack_unpack_and_vector_memory() {
    let v = eval(
        "mov.b64 %rd0, {0f3F800000, 0f40000000};\nmov.b64 {%f1, %f2}, %rd0;\nsub.f32 %f0, %f2, %f1;\nmov.b64 %rd0, {%f0, %f2};\nst.global.u64 [%out], %rd0;",
    );
    assert_eq!((f32::from_bits(v as u32), f32::from_bits((v >> 32) as u32)), (1.0, 2.0));
    let v = eval(
        "st.global.v2.f32 [%out], {0f3F800000, 0f40400000};\nld.global.v2.f32 {%f1, %f2}, [%out];\nst.global.v2.f32 [%out], {%f2, %f1};",
    );
    assert_eq!((f32::from_bits(v as u32), f32::from_bits((v >> 32) as u32)), (3.0, 1.0));
}

#[test]
fn shuffles_up_down_idx_bfly() {
    let text = ".visible .entry k(.param .u64 k_y, .param .u32 k_mode)\n{\n.reg .b32 %t, %o, %m;\n.reg .b64 %y, %at;\n.reg .pred %p, %q;\n\
        ld.param.u64 %y, [k_y];\nld.param.u32 %m, [k_mode];\nmov.u32 %t, %laneid;\nmul.lo.u32 %t, %t, 10;\n\
        setp.eq.u32 %q, %m, 0;\n@%q shfl.sync.up.b32 %o|%p, %t, 3, 0, -1;\nsetp.eq.u32 %q, %m, 1;\n@%q shfl.sync.down.b32 %o|%p, %t, 3, 31, -1;\n\
        setp.eq.u32 %q, %m, 2;\n@%q shfl.sync.idx.b32 %o|%p, %t, 5, 31, -1;\nsetp.eq.u32 %q, %m, 3;\n@%q shfl.sync.bfly.b32 %o|%p, %t, 6, 31, -1;\n\
        @!%p add.u32 %o, %o, 1;\nmov.u32 %t, %tid.x;\nmul.wide.u32 %at, %t, 4;\nadd.u64 %at, %y, %at;\nst.global.u32 [%at], %o;\nret;\n}\n";
    let want: [fn(u32) -> u32; 4] = [
        |l| if l >= 3 { (l - 3) * 10 } else { l * 10 + 1 },
        |l| if l + 3 <= 31 { (l + 3) * 10 } else { l * 10 + 1 },
        |_| 50,
        |l| (l ^ 6) * 10,
    ];
    for (mode, want) in want.iter().enumerate() {
        let mut mem = Memory::new(1 << 16);
        let y = mem.alloc(64 * 4).unwrap();
        let args = [common::Arg::Ptr(y), common::Arg::U32(mode as u32)];
        common::run(text, "k", [1, 1, 1], [64, 1, 1], &args, &mut mem, true).unwrap();
        let got = common::download(&mem, y, 64);
        for (t, g) in got.iter().enumerate() {
            assert_eq!(g.to_bits(), want(t as u32 % 32), "mode {mode} thread {t}");
        }
    }
}

#[test]
fn text_outside_the_subset_is_a_load_error_with_its_line() {
    let wrap = |body: &str| format!(".visible .entry t(.param .u64 t_out)\n{{\n.reg .b32 %r<2>;\n{body}\nret;\n}}\n");
    let err = |body: &str| Module::parse(&wrap(body)).unwrap_err().to_string();
    assert_eq!(err("popc.b32 %r0, %r1;"), "line 4: `popc.b32` is outside the PTX subset the interpreter implements");
    assert_eq!(
        err("add.rz.f32 %r0, %r1, %r1;"),
        "line 4: `add.rz.f32` is outside the PTX subset the interpreter implements"
    );
    assert_eq!(err("add.u32 %r0, %r9, 1;"), "line 4: unknown name `%r9`");
    assert_eq!(err("bra NOWHERE;"), "line 4: `NOWHERE` is no label of `t`");
    assert_eq!(err("call f, ();"), "line 4: call of `f`, which is no .func of this module");
    assert!(err("\n\nadd.u32 %r0, %r1;").starts_with("line 6: `add.u32` takes 3 operands"));
    assert!(Module::parse(".global .f32 g[4];").unwrap_err().to_string().starts_with("line 1:"));
    let recursive = ".func f() { call f, (); ret; }\n.visible .entry t() { call f, (); ret; }";
    assert!(Module::parse(recursive).unwrap_err().to_string().contains("recursion"));
}

#[test]
fn param_passing_calls_and_kernel_attributes() {
    // The call sequence nvcc emits: .param arguments declared in a scope, st.param, ld.param.
    let text = ".shared .align 4 .f32 unused[8];\n.shared .align 16 .f32 used[6];\n\
        .func (.param .b32 r) twice(.param .b32 a)\n{\n.reg .f32 %x;\nld.param.f32 %x, [a];\nadd.f32 %x, %x, %x;\nst.param.f32 [r], %x;\nret;\n}\n\
        .visible .entry t(.param .u64 .ptr .global .align 4 t_out, .param .f32 t_v)\n{\n.reg .b64 %out;\n.reg .f32 %v;\n.reg .b32 %s;\n\
        ld.param.u64 %out, [t_out];\nld.param.f32 %v, [t_v];\nmov.u32 %s, used;\n\
        {\n.param .b32 p0;\n.param .b32 r0;\nst.param.f32 [p0], %v;\ncall (r0), twice, (p0);\nld.param.f32 %v, [r0];\n}\n\
        st.global.f32 [%out], %v;\nret;\n}\n";
    let m = Module::parse(text).unwrap();
    let k = m.kernel("t").unwrap();
    assert_eq!(k.static_shared_bytes(), 24, "only the variables the kernel uses");
    assert_eq!(k.params().iter().map(|p| p.bytes).collect::<Vec<_>>(), [8, 4]);
    assert_eq!(k.registers(), 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1, "out (2), v, s, p0, r0, and twice's a, r, x");
    let mut mem = Memory::new(1 << 16);
    let out = mem.alloc(4).unwrap();
    common::run(text, "t", [1, 1, 1], [1, 1, 1], &[common::Arg::Ptr(out), common::Arg::F32(1.25)], &mut mem, true)
        .unwrap();
    assert_eq!(common::download(&mem, out, 1), [2.5]);
}

/// PTX as nvcc writes it (mangled names, `$L` labels, signed index arithmetic, pointer
/// parameters, a `// .globl` line, a performance directive) runs too: y[i] = a·x[i] + y[i].
#[test]
fn an_nvcc_style_kernel_runs() {
    let text = "//\n// Generated by NVIDIA NVVM Compiler\n.version 8.4\n.target sm_80\n.address_size 64\n\n\t// .globl\t_Z4saxpyifPKfPf\n\n\
        .visible .entry _Z4saxpyifPKfPf(\n\t.param .u32 _Z4saxpyifPKfPf_param_0,\n\t.param .f32 _Z4saxpyifPKfPf_param_1,\n\
        \t.param .u64 .ptr .global .align 4 _Z4saxpyifPKfPf_param_2,\n\t.param .u64 .ptr .global .align 4 _Z4saxpyifPKfPf_param_3\n)\n.maxntid 256, 1, 1\n{\n\
        \t.reg .pred \t%p<2>;\n\t.reg .b32 \t%r<6>;\n\t.reg .f32 \t%f<5>;\n\t.reg .b64 \t%rd<8>;\n\n\
        \tld.param.u32 \t%r2, [_Z4saxpyifPKfPf_param_0];\n\tld.param.f32 \t%f1, [_Z4saxpyifPKfPf_param_1];\n\
        \tld.param.u64 \t%rd1, [_Z4saxpyifPKfPf_param_2];\n\tld.param.u64 \t%rd2, [_Z4saxpyifPKfPf_param_3];\n\
        \tmov.u32 \t%r3, %ctaid.x;\n\tmov.u32 \t%r4, %ntid.x;\n\tmov.u32 \t%r5, %tid.x;\n\tmad.lo.s32 \t%r1, %r3, %r4, %r5;\n\
        \tsetp.ge.s32 \t%p1, %r1, %r2;\n\t@%p1 bra \t$L__BB0_2;\n\n\tcvta.to.global.u64 \t%rd3, %rd1;\n\tmul.wide.s32 \t%rd4, %r1, 4;\n\
        \tadd.s64 \t%rd5, %rd3, %rd4;\n\tld.global.nc.f32 \t%f2, [%rd5];\n\tcvta.to.global.u64 \t%rd6, %rd2;\n\tadd.s64 \t%rd7, %rd6, %rd4;\n\
        \tld.global.f32 \t%f3, [%rd7];\n\tfma.rn.f32 \t%f4, %f2, %f1, %f3;\n\tst.global.f32 \t[%rd7], %f4;\n\n$L__BB0_2:\n\tret;\n\n}\n";
    let mut mem = Memory::new(1 << 16);
    let x = common::upload(&mut mem, &[1.0, 2.0, 3.0, 4.0, 5.0]);
    let y = common::upload(&mut mem, &[10.0; 5]);
    let args = [common::Arg::U32(5), common::Arg::F32(0.5), common::Arg::Ptr(x), common::Arg::Ptr(y)];
    common::run(text, "_Z4saxpyifPKfPf", [2, 1, 1], [4, 1, 1], &args, &mut mem, true).unwrap();
    assert_eq!(common::download(&mem, y, 5), [10.5, 11.0, 11.5, 12.0, 12.5]);
}

/// `atom` and `red` on global and shared memory: every thread of two blocks adds into one word,
/// takes the max of its index, and swaps; `cas` replaces only on a match.
#[test]
fn atomics_read_modify_write() {
    let text = ".shared .align 4 .u32 count[1];\n.visible .entry k(.param .u64 k_out)\n{\n\
        .reg .b32 %t, %old, %s;\n.reg .b64 %out, %at;\n.reg .f32 %f;\n.reg .pred %first;\n\
        ld.param.u64 %out, [k_out];\nmov.u32 %t, %tid.x;\nmov.u32 %s, count;\nsetp.eq.u32 %first, %t, 0;\n\
        @%first st.shared.u32 [%s], 0;\nbar.sync 0;\natom.shared.add.u32 %old, [%s], 1;\nbar.sync 0;\n\
        @%first ld.shared.u32 %old, [%s];\n@%first red.global.add.u32 [%out], %old;\n\
        cvt.rn.f32.u32 %f, %t;\nred.global.add.f32 [%out+4], %f;\natom.global.max.u32 %old, [%out+8], %t;\n\
        atom.global.cas.b32 %old, [%out+12], 7, %t;\nret;\n}\n";
    let mut mem = Memory::new(1 << 16);
    let out = mem.alloc(16).unwrap();
    mem.write(out + 12, &7u32.to_le_bytes()).unwrap();
    common::run(text, "k", [2, 1, 1], [64, 1, 1], &[common::Arg::Ptr(out)], &mut mem, true).unwrap();
    let mut b = [0u8; 16];
    mem.read(out, &mut b).unwrap();
    let word = |i: usize| u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    assert_eq!(word(0), 128, "each block counted its 64 threads in shared memory");
    assert_eq!(f32::from_bits(word(1)), 2.0 * (0..64).sum::<u32>() as f32);
    assert_eq!(word(2), 63);
    assert_eq!(word(3), 0, "thread 0 of block 0 swapped 7 for 0; no later one matched 7");
    let bad =
        Module::parse(".visible .entry k(.param .u64 p)\n{\n.reg .b32 %r;\natom.global.exch.s32 %r, [p], 1;\n}\n");
    assert_eq!(bad.unwrap_err().line, 4);
}
