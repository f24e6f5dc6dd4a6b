//! The nesting check run before parsing untrusted HCL (policies from the
//! API, the server configuration). The HCL parser's time grows
//! exponentially with the nesting of unclosed `{`, `[` and `(` (a 444-byte
//! input found by the `server_config` fuzz target took minutes), while
//! policies and configurations need a few levels: text nested deeper than
//! [`MAX_DEPTH`] is refused before the parser sees it. Pure.

/// The deepest nesting of `{`, `[` and `(` accepted. A policy needs 2
/// (`path "x" { capabilities = [...] }`), a configuration 3.
pub const MAX_DEPTH: usize = 10;

/// What the scanner is inside of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// `{`, `[` or `(` in code.
    Bracket,
    /// A quoted string (a template).
    Str,
    /// `${ ... }` or `%{ ... }` inside a string: code again.
    Interp,
}

/// Refuses `text` when it nests deeper than [`MAX_DEPTH`], naming the
/// line. The scan follows HCL's lexical structure, so nothing hides depth
/// from it: brackets in code, quoted strings, and the `${ }` / `%{ }`
/// interpolations inside strings (which are code again) all count, while
/// a brace that is text inside a string (`"{{identity.entity.id}}"`) or a
/// comment does not. Heredocs are scanned as code (their braces count:
/// it can only refuse more, never less).
pub fn check_nesting(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let (mut line, mut i) = (1usize, 0usize);
    let deep = |line: usize| {
        format!(
            "line {line}: nested more than {MAX_DEPTH} levels deep (brackets, strings and \
             interpolations); a policy or configuration needs only a few"
        )
    };
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' {
            line += 1;
        }
        let in_string = stack.last() == Some(&Frame::Str);
        if in_string && b == b'\n' {
            // A quoted string ends at its line (HCL's rule): the parser
            // reads what follows as code, and so does this scan.
            stack.pop();
        } else if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'$' | b'%' if bytes.get(i + 1) == Some(&b) && bytes.get(i + 2) == Some(&b'{') => {
                    i += 2; // `$${` / `%%{`: literal text
                }
                b'$' | b'%' if bytes.get(i + 1) == Some(&b'{') => {
                    stack.push(Frame::Interp);
                    i += 1;
                }
                _ => {}
            }
        } else {
            match b {
                b'"' => stack.push(Frame::Str),
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    i += 2;
                    while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/'))
                    {
                        if bytes[i] == b'\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                    i += 1;
                }
                b'{' | b'[' | b'(' => stack.push(Frame::Bracket),
                b'}' | b']' | b')' => {
                    if matches!(stack.last(), Some(Frame::Bracket | Frame::Interp)) {
                        stack.pop();
                    }
                }
                _ => {}
            }
        }
        if stack.len() > MAX_DEPTH {
            return Err(deep(line));
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_policies_and_configs_pass() {
        check_nesting(r#"path "a/*" { capabilities = ["read"] }"#).unwrap();
        check_nesting("listener \"tcp\" {\n  address = \"x\"\n}\nseal \"s\" { a = { b = [1] } }\n")
            .unwrap();
        // Braces that are text inside strings, and comments, do not count.
        let deep = "{".repeat(50);
        check_nesting(&format!("a = \"{deep}\" # {deep}\n// {deep}\n/* {deep} */")).unwrap();
        check_nesting(r#"path "secret/{{identity.entity.id}}/*" { capabilities = ["read"] }"#)
            .unwrap();
        check_nesting(&format!("a = \"$${}\"", "{".repeat(50))).unwrap();
    }

    #[test]
    fn deep_nesting_is_refused_with_its_line() {
        let e = check_nesting(&format!("a = 1\nb = {}", "{c = ".repeat(11))).unwrap_err();
        assert!(e.starts_with("line 2: nested more than 10"), "{e}");
        check_nesting(&format!("b = {}", "[".repeat(10))).unwrap();
        // Interpolations are code: depth hidden in them still counts, and
        // a closing brace inside a string cannot lower the count.
        let hidden = format!("a = {}", "\"${ {b = ".repeat(6));
        assert!(check_nesting(&hidden).is_err());
        let fooled = format!("a = {}", "{b = \"}\" c = ".repeat(11));
        assert!(check_nesting(&fooled).is_err());
    }

    /// The second slow input the `server_config` fuzz target found (4.5 s
    /// in the release build): its depth hid in a quoted string left open
    /// at the end of a line, which the parser reads on as code.
    #[test]
    fn an_unterminated_string_does_not_hide_depth() {
        let found = include_str!("hcl/slow-unterminated-string.hcl");
        let started = std::time::Instant::now();
        assert!(check_nesting(found).is_err());
        let e = crate::policy::parse("p", found).unwrap_err();
        assert!(e.to_string().contains("nested more than 10"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // A string still hides nothing within its own line.
        check_nesting(&format!("a = \"{}\"\nb = 1", "{".repeat(50))).unwrap();
        let e = check_nesting(&format!("a = \"x\n{}", "{".repeat(11))).unwrap_err();
        assert!(e.starts_with("line 2"), "{e}");
    }

    /// The input the `server_config` fuzz target found: the HCL parser
    /// spent minutes on it; it is now refused at once.
    #[test]
    fn the_fuzzer_found_slow_input_is_refused() {
        let found = "IuraaeI=2==M=={-It_duaaeIaaeI=2==M=={-tI--t_t=1==M=={_du=2==M=={-t_I--t_tI==2==1==M=={_du=2==M=={-t_I--t_tI==2==M=={-tI--t_t=1==M=={t_I-aaeI=2==M=={-tI--t_t=1==M=={_du=M=={-tI--t_t=1==M=={_du=2==M=={-t_I-aaeI=2==M=={-tI--t_t=1==M=={_du=2==M=={-t_I--t_tI==2==M=={-tI--t_t=1==M=={t_I-aaeI=2==M=={-tI--t_t=1==M=={_du=2==M=={-t_I--t_tI==2==M=={-tI--t_t=1==M=={_du=2==M=={-t_I--t_t=1==M=={st_du=2==M=={-t_I--t_t=1==M=={st_=M=={st_lis_disab_du";
        assert!(check_nesting(found).is_err());
        // Through the policy parser (what `sys/policies/acl/:name` runs).
        let e = crate::policy::parse("p", found).unwrap_err();
        assert!(e.to_string().contains("nested more than 10"), "{e}");
    }
}
