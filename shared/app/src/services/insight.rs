//! Similar changes and the risk questionnaire. Candidates come from the change's own
//! assets (their entries, newest first) and from recent changes of its type; neither
//! reads more than a bounded slice of the workspace.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::json;
use tracing::instrument;
use vigilo_domain::change::ChangeRequest;
use vigilo_domain::ids::{ChangeNumber, Slug};
use vigilo_domain::risk::{self, Assessment, RawAnswers, Track};
use vigilo_domain::role::Permission;

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::retrying;
use crate::services::records::{decode, load, to_data};
use crate::store::{Item, Key, Query};
use crate::txn::AuditEntry;
use crate::Vigilo;

/// Recent changes read per asset, and of the same type.
const PER_ASSET: usize = 50;
const SAME_TYPE: usize = 200;
/// Titles at least this alike make a change similar without a shared asset.
const TITLE_THRESHOLD: f64 = 0.3;
const SIMILAR_MAX: usize = 20;

/// A similar change, and why.
struct Candidate {
    change: ChangeRequest,
    shared: Vec<String>,
    similarity: f64,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskInput {
    pub answers: Option<RawAnswers>,
}

impl Vigilo {
    async fn similar_to(&self, c: &ChangeRequest) -> AppResult<Vec<Candidate>> {
        let ws = &c.workspace_id;
        let mut numbers: BTreeSet<ChangeNumber> = BTreeSet::new();
        for asset in c.affected_assets.iter().take(20) {
            let page =
                self.table.query(&Query::table(keys::asset_partition(ws, asset)).backward().limit(PER_ASSET)).await?;
            numbers.extend(page.items.iter().filter_map(|i| keys::number_from_sk(&i.key.sk)));
        }
        let by_type = Query::index(keys::BY_TYPE, keys::type_partition(ws, c.change_type)).backward().limit(SAME_TYPE);
        let mut loaded: BTreeMap<ChangeNumber, ChangeRequest> = BTreeMap::new();
        for item in self.table.query(&by_type).await?.items {
            let other: ChangeRequest = decode(item)?;
            loaded.insert(other.number, other);
        }
        numbers.remove(&c.number);
        let missing: Vec<Key> =
            numbers.iter().filter(|n| !loaded.contains_key(n)).map(|n| keys::change(ws, *n)).collect();
        for chunk in missing.chunks(100) {
            for item in self.table.snapshot(chunk).await?.into_iter().flatten() {
                let other: ChangeRequest = decode(item)?;
                loaded.insert(other.number, other);
            }
        }
        let mut out: Vec<Candidate> = loaded
            .into_values()
            .filter(|o| o.number != c.number)
            .filter_map(|o| {
                let shared: Vec<String> =
                    o.affected_assets.iter().filter(|a| c.affected_assets.contains(a)).cloned().collect();
                let similarity = risk::title_similarity(&c.title, &o.title);
                (!shared.is_empty() || similarity >= TITLE_THRESHOLD).then_some(Candidate {
                    change: o,
                    shared,
                    similarity,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            let key = |x: &Candidate| (x.shared.len() as f64) + x.similarity;
            key(b).total_cmp(&key(a)).then(b.change.number.cmp(&a.change.number))
        });
        out.truncate(SIMILAR_MAX);
        Ok(out)
    }

    /// `GET /changes/{n}/similar`: overlapping assets or a similar title, with outcomes.
    pub async fn similar_changes(
        &self,
        actor: &Actor,
        slug: &Slug,
        number: ChangeNumber,
    ) -> AppResult<Vec<risk::Similar>> {
        let c = self.get_stored_change(actor, slug, number).await?;
        let found = self.similar_to(&c).await?;
        Ok(found.into_iter().map(|x| risk::similar_view(&x.change, x.shared, x.similarity)).collect())
    }

    pub async fn get_risk_assessment(&self, actor: &Actor, slug: &Slug, number: ChangeNumber) -> AppResult<Assessment> {
        let c = self.get_stored_change(actor, slug, number).await?;
        load(&*self.table, &keys::risk_assessment(&c.workspace_id, c.number)).await?.ok_or(AppError::NotFound)
    }

    /// Scores the change from the answers and what Vigilo knows, keeps the assessment
    /// with the change, and audits it. The change's own `risk_level` is left to people.
    #[instrument(skip(self, actor, input), fields(user = %actor.user_id))]
    pub async fn assess_risk(
        &self,
        actor: &Actor,
        slug: &Slug,
        number: ChangeNumber,
        input: RiskInput,
    ) -> AppResult<Assessment> {
        retrying!({
            let (access, mut tx, c, _) = self.change_for_write(actor, slug, number).await?;
            access.require(Permission::CreateChange)?;
            let answers = input.answers.clone().unwrap_or_default().parse()?;
            let similar = self.similar_to(&c).await?;
            let mut track = Track::default();
            for s in &similar {
                if let Some(failed) = risk::ended(&s.change) {
                    track.ended += 1;
                    track.failed += usize::from(failed);
                }
            }
            let tz = vigilo_domain::time::zone(&access.workspace.timezone);
            let (score, level, factors) = risk::score(&c, &answers, &tz, track);
            let now = self.now();
            let a = Assessment {
                change_number: c.number,
                score,
                suggested_risk_level: level,
                current_risk_level: c.risk_level,
                factors,
                answers,
                assessed_by: access.user().clone(),
                assessed_at: now,
            };
            let key = keys::risk_assessment(access.ws(), c.number);
            let old = self.table.get(&key).await?.map(|i| i.data).unwrap_or(json!(null));
            tx.put(Item::new(key, to_data(&a)), None);
            tx.audit(
                AuditEntry::new("change.risk_assess", "ChangeRequest", &c.id).values(old, to_data(&a)).subject(&c.id),
            );
            tx.commit(now).await?;
            Ok(a)
        })
    }
}
