//! Tables for people to read: one look for every bb tool.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

/// A table with `header`; the columns at `numeric` are right-aligned. Plain text (no
/// colours, no wrapping), so what a terminal shows is what a pipe gets.
///
/// ```
/// let mut t = bb_cli::table::table(&["node", "slot"], &[1]);
/// t.add_row(vec!["0".to_string(), "1234".to_string()]);
/// assert!(t.to_string().contains("1234"));
/// ```
pub fn table(header: &[&str], numeric: &[usize]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .force_no_tty()
        .set_header(header.iter().copied());
    for &i in numeric {
        if let Some(col) = t.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// `bb_` and the first 6 base58 characters of an address; "-" for none.
pub fn short_addr(addr: &str) -> String {
    if addr.is_empty() {
        return "-".into();
    }
    let keep = if addr.starts_with("bb_") { 9 } else { 8 };
    addr.chars().take(keep).collect()
}

/// An optional value, or "-".
pub fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_right_aligned_and_no_colour_codes_leak() {
        let mut t = table(&["node", "slot"], &[1]);
        t.add_row(vec!["0".to_string(), "7".to_string()]);
        t.add_row(vec!["1".to_string(), "1234".to_string()]);
        let text = t.to_string();
        let lines: Vec<&str> = text.lines().collect();
        let row = lines.iter().find(|l| l.contains(" 7 ")).unwrap();
        let wide = lines.iter().find(|l| l.contains("1234")).unwrap();
        assert_eq!(row.find(" 7 ").unwrap() + 2, wide.find("1234").unwrap() + 4);
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }

    #[test]
    fn short_forms() {
        assert_eq!(
            short_addr("bb_4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi"),
            "bb_4vJ9JU"
        );
        assert_eq!(short_addr(""), "-");
        assert_eq!(opt(None::<u64>), "-");
        assert_eq!(opt(Some(3)), "3");
    }
}
