//! Parses `aspen kv txn` input, in the spirit of `etcdctl txn`: compares, a blank line,
//! the operations run when all compares hold, a blank line, the operations run otherwise.
//!
//! ```text
//! mod("app/config") = 12
//! value("app/mode") != "maintenance"
//!
//! put app/config "new contents"
//! del app/stale
//!
//! get app/config
//! ```
//! Compare targets: `value`, `version`, `mod`, `create`, `lease`; operators `=`, `!=`,
//! `<`, `>`. Operations: `put KEY VALUE`, `del KEY`, `del --prefix KEY`, `get KEY`.
//! Words may be double-quoted, with `\"` and `\\` escapes.

use crate::error::{Error, Result};
use crate::kv::{Compare, CompareOp, CompareTarget, PutOp, Txn, TxnOp};

fn words(line: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut w = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => w.push('\n'),
                        Some(e) => w.push(e),
                        None => return Err(Error::invalid("dangling backslash")),
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => w.push(c),
                }
            }
            if !closed {
                return Err(Error::invalid(format!("unclosed quote in {line:?}")));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
        }
        out.push(w);
    }
    Ok(out)
}

/// Byte offset of the first `)` outside double quotes: the end of `target(key)`, whatever
/// the compare value after it holds.
fn closing_paren(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ')' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn compare(line: &str) -> Result<Compare> {
    let bad = || {
        Error::invalid(format!(
            "cannot read compare {line:?}; expected e.g. mod(\"key\") = 3"
        ))
    };
    let open = line.find('(').ok_or_else(bad)?;
    let close = open + 1 + closing_paren(line.get(open + 1..).ok_or_else(bad)?).ok_or_else(bad)?;
    let target = line.get(..open).ok_or_else(bad)?.trim();
    let key_words = words(line.get(open + 1..close).ok_or_else(bad)?)?;
    let [key] = key_words.as_slice() else {
        return Err(bad());
    };
    let rest = words(line.get(close + 1..).ok_or_else(bad)?)?;
    let [op, value] = rest.as_slice() else {
        return Err(bad());
    };
    let op = match op.as_str() {
        "=" | "==" => CompareOp::Equal,
        "!=" => CompareOp::NotEqual,
        "<" => CompareOp::Less,
        ">" => CompareOp::Greater,
        _ => return Err(bad()),
    };
    let num = || {
        value
            .parse::<u64>()
            .map_err(|_| Error::invalid(format!("{value:?} is not a number in {line:?}")))
    };
    let target = match target {
        "value" => CompareTarget::Value(value.clone().into_bytes()),
        "version" => CompareTarget::Version(num()?),
        "mod" => CompareTarget::ModRevision(num()?),
        "create" => CompareTarget::CreateRevision(num()?),
        "lease" => CompareTarget::Lease(num()?),
        _ => return Err(bad()),
    };
    Ok(Compare {
        key: key.clone(),
        op,
        target,
    })
}

fn op(line: &str) -> Result<TxnOp> {
    let w = words(line)?;
    let strs: Vec<&str> = w.iter().map(String::as_str).collect();
    match strs.as_slice() {
        ["put", key, value] => Ok(TxnOp::Put(PutOp::file(
            key.to_string(),
            value.as_bytes().to_vec(),
        ))),
        ["del", "--prefix", key] => Ok(TxnOp::DeletePrefix {
            prefix: key.to_string(),
        }),
        ["del", key] => Ok(TxnOp::Delete {
            key: key.to_string(),
        }),
        ["get", key] => Ok(TxnOp::Get {
            key: key.to_string(),
        }),
        _ => Err(Error::invalid(format!(
            "cannot read operation {line:?}; expected put KEY VALUE, del [--prefix] KEY or get KEY"
        ))),
    }
}

pub fn parse(text: &str) -> Result<Txn> {
    let mut sections: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            sections.push(Vec::new());
        } else if let Some(s) = sections.last_mut() {
            s.push(line);
        }
    }
    if sections.len() > 3 {
        // Allow trailing blank lines only.
        if sections.iter().skip(3).any(|s| !s.is_empty()) {
            return Err(Error::invalid(
                "a transaction has three sections separated by blank lines",
            ));
        }
    }
    let get = |i: usize| sections.get(i).cloned().unwrap_or_default();
    Ok(Txn {
        compare: get(0).into_iter().map(compare).collect::<Result<_>>()?,
        success: get(1).into_iter().map(op).collect::<Result<_>>()?,
        failure: get(2).into_iter().map(op).collect::<Result<_>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_sections() {
        let t = parse("mod(\"a\") = 3\nvalue(\"b\") != \"x y\"\n\nput a \"new \\\"v\\\"\"\ndel --prefix c\n\nget a\n").unwrap();
        assert_eq!(t.compare.len(), 2);
        assert_eq!(t.compare[0].target, CompareTarget::ModRevision(3));
        assert_eq!(t.compare[1].op, CompareOp::NotEqual);
        assert_eq!(t.compare[1].target, CompareTarget::Value(b"x y".to_vec()));
        assert_eq!(t.success.len(), 2);
        match &t.success[0] {
            TxnOp::Put(p) => assert_eq!(p.value, b"new \"v\""),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.failure, vec![TxnOp::Get { key: "a".into() }]);
        assert!(parse("mod(a) ~ 3\n").is_err());
        assert!(parse("\n\nfrobnicate x\n").is_err());
        assert!(parse("\n\nput a \"unclosed\n").is_err());
        let t = parse("value(\"k)\\\"\") = \"a)\"\n").unwrap();
        assert_eq!(t.compare[0].key, "k)\"");
        assert_eq!(t.compare[0].target, CompareTarget::Value(b"a)".to_vec()));
    }
}
