//! ACL policies: parsing (HCL and JSON) and matching.
//!
//! Properties:
//! * parse → `to_hcl` → parse gives the same rules (capabilities compared
//!   as the ACL reads them: a denial is a denial);
//! * parse → `to_json` → parse gives an ACL that decides every pattern of
//!   the policy the same way;
//! * `deny` always wins: adding a policy that denies a path exactly makes
//!   that path denied, whatever else the policies grant;
//! * matching never panics on any pattern/path pair.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use lockbox_core::policy::{self, Acl, Capabilities, Policy};

#[derive(Arbitrary, Debug)]
struct Input {
    text: String,
    other: String,
    path: String,
}

/// Capabilities as the ACL reads them: a denial carries nothing else.
fn effective(c: Capabilities) -> Vec<&'static str> {
    c.names()
}

fn rules(p: &Policy) -> Vec<(String, Vec<&'static str>)> {
    p.rules
        .iter()
        .map(|r| (r.pattern.clone(), effective(r.capabilities)))
        .collect()
}

fuzz_target!(|input: Input| {
    let _ = policy::matches(&input.other, &input.path);
    let Ok(p) = policy::parse("fuzz", &input.text) else {
        return;
    };

    let hcl = p.to_hcl();
    let again = policy::parse("fuzz", &hcl)
        .unwrap_or_else(|e| panic!("printed HCL does not parse: {e}\n{hcl}"));
    assert_eq!(
        rules(&p),
        rules(&again),
        "HCL round trip changed the rules:\n{hcl}"
    );

    let json = p.to_json();
    let from_json = policy::parse("fuzz", &json)
        .unwrap_or_else(|e| panic!("printed JSON does not parse: {e}\n{json}"));
    let (a, b) = (Acl::new([&p]), Acl::new([&from_json]));
    for r in &p.rules {
        assert_eq!(
            effective(a.capabilities(&r.pattern)),
            effective(b.capabilities(&r.pattern)),
            "JSON round trip changed the decision on {:?}:\n{json}",
            r.pattern
        );
    }
    assert_eq!(
        effective(a.capabilities(&input.path)),
        effective(b.capabilities(&input.path)),
        "JSON round trip changed the decision on {:?}",
        input.path
    );

    // `deny` always wins over every other policy, on the exact path.
    if !input.path.contains('*') && !input.path.contains('+') && !input.path.is_empty() {
        let deny_text = Policy {
            name: "deny".into(),
            rules: vec![policy::PathRule {
                pattern: input.path.clone(),
                capabilities: Capabilities::parse(["deny"], &input.path).expect("deny parses"),
            }],
        }
        .to_hcl();
        let deny = policy::parse("deny", &deny_text)
            .unwrap_or_else(|e| panic!("a printed deny rule does not parse: {e}\n{deny_text}"));
        let acl = Acl::new([&p, &deny]);
        assert!(
            acl.capabilities(&input.path).is_deny(),
            "a policy denying {:?} exactly did not win: {:?}",
            input.path,
            acl.capabilities(&input.path).names()
        );
    }
});
