//! Your own firmware with the tinyadapt runtime, no link: a device that calibrates itself.
//! It loads `w*` from its flash slot, takes K readings of its sensor with their reference
//! values, adapts the model trained on CSV tasks (3 inputs, 2 outputs), and then predicts
//! from each new reading. The model type is what `meta-train firmware BLOB` prints.
#![no_std]
#![no_main]

use device::{Adapter, Mlp2, Sample};
use qemu_rt as _;
use static_cell::ConstStaticCell;

/// The network `w*` was trained as, and the samples it adapts on.
type Net = Mlp2<f32, 3, 40, 40, 2>;
type Model = Adapter<'static, Net, 3, 2, 10>;

/// In `.bss`, not on the stack: the adapter's RAM is `Model::RAM_BYTES`.
static MODEL: ConstStaticCell<Model> = ConstStaticCell::new(Model::UNLOADED);

/// A reading and its reference value: your sensor and your calibration source go here.
fn reading(i: u32) -> Sample<3, 2> {
    let t = i as f32 * 0.37;
    let x = [t % 2.0 - 1.0, (t * 0.5) % 2.0 - 1.0, 0.25];
    Sample {
        x,
        y: [0.8 * x[0] - 0.3 * x[1] + 0.5, 0.2 * x[1] + 0.6 * x[2] + 0.5],
    }
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let model = MODEL.take();
    let [slot_a, _] = app::wstar_slots(&device::board::MPS2_AN386);
    match device::slots::slot_blob::<Net, 3, 2>(slot_a) {
        Ok((_, blob)) => match model.load(blob) {
            Ok(()) => defmt::info!("w* loaded; adapter {=usize} B RAM", Model::RAM_BYTES),
            Err(e) => defmt::error!("w* refused: {}", e),
        },
        Err(e) => defmt::error!("no usable w* in slot A: {}", e),
    }
    for i in 0..10 {
        if let Err(e) = model.push(reading(i)) {
            defmt::warn!("reading {=u32} refused: {}", i, e.kind);
        }
    }
    match model.adapt() {
        Ok(r) => defmt::info!(
            "adapted: loss {=f32} -> {=f32}",
            r.loss_before,
            r.loss_after
        ),
        Err(e) => defmt::error!("adaptation refused: {}", e),
    }
    let mut i = 10;
    loop {
        let s = reading(i);
        if let Ok(y) = model.predict(&s.x) {
            defmt::info!("reading {=u32}: predicted {}, reference {}", i, y, s.y);
        }
        i += 1;
        if i == 13 {
            defmt::info!("done");
        }
        cortex_m::asm::delay(1_000_000);
    }
}
