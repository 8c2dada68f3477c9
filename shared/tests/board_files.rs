//! The built-in boards are board files too, and a user's board file is checked on load.

use shared::board::BOARDS;
use shared::board_file::{builtin_path, BoardFile};

#[test]
fn every_builtin_board_is_its_file() {
    for b in BOARDS {
        let f = BoardFile::load(&builtin_path(b.name)).unwrap();
        assert_eq!(f.board, b, "shared/boards/{}.toml", b.name);
        assert_eq!(f.package.is_some(), b.qemu_machine.is_some(), "{}", b.name);
    }
}

#[test]
fn a_bad_board_file_is_an_error_naming_the_file_and_the_fault() {
    let text = std::fs::read_to_string(builtin_path("mps2-an386")).unwrap();
    let cases = [
        (
            text.replace("core_clock_hz", "clock_hz"),
            "unknown field `clock_hz`",
        ),
        (
            text.replace(
                "wstar = { origin = 0x0010_0000",
                "wstar = { origin = 0x000F_0000",
            ),
            "the code and w* regions overlap",
        ),
        (
            text.replace("length = 0x0010_0000 }\n# 40", "length = 0x3F }\n# 40"),
            "two slots of at least 64 bytes",
        ),
        (
            text.replace(
                "ram = { origin = 0x2000_0000, length = 0x0004_0000 }",
                "ram = { origin = 0xFFFF_0000, length = 0x0004_0000 }",
            ),
            "the RAM region is empty or runs past the end of the address space",
        ),
        (
            text.replace("target = \"thumbv7em-none-eabihf\"\n", ""),
            "missing field `target`",
        ),
    ];
    for (bad, why) in cases {
        let e = BoardFile::parse(&bad, "mine.toml".as_ref()).unwrap_err();
        assert!(e.starts_with("mine.toml: ") && e.contains(why), "{e}");
    }
    let e = BoardFile::load("no/such/board.toml".as_ref()).unwrap_err();
    assert!(
        e.starts_with("cannot read board file no/such/board.toml"),
        "{e}"
    );
}
