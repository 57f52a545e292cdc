//! A dataset spec read from TOML. A table that names a preset (`preset = "kuairand"`) starts from
//! that preset and overlays the rest; this is the one place where specs and presets meet, so
//! `spec` knows no preset and `presets` only builds specs.

use std::path::Path;

use crate::error::{DataError, Result};
use crate::presets::preset;
use crate::spec::DatasetSpec;

impl DatasetSpec {
    /// Reads a spec from TOML. Relative paths in it resolve against the file's directory, so a
    /// config can point at `../shared/data` wherever it is run from.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let mut spec = Self::from_toml_str(&text).map_err(|e| match e {
            DataError::Spec(message) => DataError::spec(format!("{}: {message}", path.display())),
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        spec.resolve_paths(base);
        Ok(spec)
    }

    /// Parses TOML; `preset = "name"` starts from that preset and overlays the rest of the table.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let value: toml::Table =
            toml::from_str(text).map_err(|e| DataError::spec(e.to_string()))?;
        Self::from_toml_table(value)
    }

    pub fn from_toml_table(mut table: toml::Table) -> Result<Self> {
        if let Some(preset_name) = table.get("preset").and_then(|v| v.as_str()).map(str::to_owned) {
            let base = preset(&preset_name)?;
            let mut merged =
                toml::Table::try_from(&base).map_err(|e| DataError::spec(e.to_string()))?;
            merge_tables(&mut merged, std::mem::take(&mut table));
            table = merged;
        }
        let spec: DatasetSpec =
            table.try_into().map_err(|e: toml::de::Error| DataError::spec(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }
}

/// Overlays `overlay` onto `base`: tables merge key by key, anything else replaces. A table with
/// a `strategy` key is one choice among several (a split, a skip rule) and replaces whole, so
/// the preset's fields for its own strategy do not leak into another.
fn merge_tables(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_inner)), toml::Value::Table(overlay_inner))
                if !overlay_inner.contains_key("strategy") =>
            {
                merge_tables(base_inner, overlay_inner)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::labels::SkipStrategy;
    use crate::spec::{DatasetSpec, SplitSpec};

    #[test]
    fn preset_overlay_replaces_only_what_is_named() {
        let spec = DatasetSpec::from_toml_str(
            r#"
            preset = "kuairand"
            [filter]
            min_user_interactions = 11
            [labels.skip]
            strategy = "user_median"
            "#,
        )
        .unwrap();
        assert_eq!(spec.filter.min_user_interactions, 11);
        assert_eq!(spec.log.user, "user_id");
        assert!(spec.log.flags.contains(&"is_click".to_string()));
        assert_eq!(spec.labels.skip, SkipStrategy::UserMedian);
    }

    #[test]
    fn a_strategy_table_replaces_the_presets_whole() {
        let spec = DatasetSpec::from_toml_str(
            "preset = \"kuairand\"\n[labels]\nskip = { strategy = \"duration_quantile\", buckets = 4, quantile = 0.5 }\n[split]\nstrategy = \"random\"\n",
        )
        .unwrap();
        assert_eq!(spec.labels.skip, SkipStrategy::DurationQuantile { buckets: 4, quantile: 0.5 });
        assert!(matches!(spec.split, SplitSpec::Random { .. }));
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let err = DatasetSpec::from_toml_str("preset = \"kuairand\"\n[filter]\nmin_users = 3\n")
            .unwrap_err();
        assert!(err.to_string().contains("min_users"), "{err}");
    }
}
