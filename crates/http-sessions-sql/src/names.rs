//! The names of a store's tables, chosen by the application and checked
//! once, so that every statement can be written with them as they are.

use http_sessions_core::ConfigError;

/// The table name a store uses unless told otherwise; its values, flash
/// messages, users and schema version live in tables named after it
/// (`http_sessions_values`, ...).
pub const DEFAULT_TABLE: &str = "http_sessions";

/// The longest table or schema name accepted: Postgres keeps 63 bytes of
/// a name, and the longest suffix added is `_remember` (9).
const MAX_NAME_LEN: usize = 48;

/// A schema (or database) and a table name, each letters, digits and `_`,
/// not starting with a digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    pub(crate) schema: Option<String>,
    pub(crate) table: String,
}

impl Default for Names {
    fn default() -> Self {
        Self {
            schema: None,
            table: DEFAULT_TABLE.to_owned(),
        }
    }
}

impl Names {
    /// `name` if it can be a schema or table name here.
    pub(crate) fn check(what: &'static str, name: &str) -> Result<String, ConfigError> {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok
            || name.len() > MAX_NAME_LEN
            || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ConfigError::Store(
                format!(
                    "the session store's {what} name {name:?} is not usable: use 1 to \
                     {MAX_NAME_LEN} ASCII letters, digits and '_', not starting with a digit"
                )
                .into(),
            ));
        }
        Ok(name.to_owned())
    }

    /// `name` of this store's table family, quoted, with the schema if
    /// one is set: `suffix` "" is the sessions table itself.
    pub(crate) fn qualified(&self, suffix: &str, quote: char) -> String {
        let table = format!("{quote}{}{suffix}{quote}", self.table);
        match &self.schema {
            Some(schema) => format!("{quote}{schema}{quote}.{table}"),
            None => table,
        }
    }

    /// The bare name with `suffix`, for indexes.
    pub(crate) fn bare(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.table)
    }

    /// `sql` with each `{name}` of the table family replaced: `{sessions}`,
    /// `{values}`, `{flashes}`, `{users}`, `{version}`, the functions
    /// `{admit}`, `{create}`, `{save}` and `{end_all}`, and the indexes
    /// `{index_expires}`, `{index_user}` and `{index_remember}`.
    pub(crate) fn render(&self, sql: &str, quote: char) -> String {
        let q = |suffix: &str| self.qualified(suffix, quote);
        let i = |suffix: &str| format!("{quote}{}{quote}", self.bare(suffix));
        sql.replace("{sessions}", &q(""))
            .replace("{values}", &q("_values"))
            .replace("{flashes}", &q("_flashes"))
            .replace("{users}", &q("_users"))
            .replace("{version}", &q("_version"))
            .replace("{admit}", &q("_admit"))
            .replace("{create}", &q("_create"))
            .replace("{save}", &q("_save"))
            .replace("{end_all}", &q("_end_all"))
            .replace("{index_expires}", &i("_expires"))
            .replace("{index_user}", &i("_user"))
            .replace("{index_remember}", &i("_remember"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_taken() {
        for good in ["sessions", "_s", "app_sessions_2", &"a".repeat(48)] {
            assert_eq!(Names::check("table", good).ok().as_deref(), Some(good));
        }
        for bad in [
            "",
            "2x",
            "a-b",
            "a b",
            "a\"b",
            "a;drop",
            "é",
            &"a".repeat(49),
        ] {
            assert!(Names::check("table", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_quoted_and_qualified() {
        let names = Names {
            schema: Some("app".into()),
            table: "s".into(),
        };
        assert_eq!(
            names.render("{sessions} {values} {index_user} {save}", '"'),
            r#""app"."s" "app"."s_values" "s_user" "app"."s_save""#
        );
        assert_eq!(
            Names::default().render("{users}", '`'),
            "`http_sessions_users`"
        );
    }
}
