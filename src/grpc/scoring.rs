//! ScoringService: Score, Rank and FindAudience.

use tonic::{Request, Response, Status};

use crate::auth::Role;

use super::convert;
use super::error::Violations;
use super::pb::{self, scoring_service_server::ScoringService};
use super::{Handlers, require};

/// The ScoringService implementation.
pub struct ScoringApi(pub Handlers);

#[tonic::async_trait]
impl ScoringService for ScoringApi {
    #[tracing::instrument(skip_all)]
    async fn score(
        &self,
        request: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreResult>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::ScoreRequest {
            tenant,
            prospect_id,
            candidate,
        } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(&grant, tenant.as_ref(), "ScoringService/Score", Role::Read)?;
        let prospect = convert::prospect_id(&mut v, "prospect_id", prospect_id);
        let candidate = convert::candidate(
            &mut v,
            "candidate",
            candidate,
            "draft".into(),
            &self.0.limits,
        );
        require!(v; tenant, prospect, candidate);
        let scored = self.0.engine.score(&tenant, &prospect, candidate).await?;
        Ok(Response::new(convert::scored_to_pb(scored)))
    }

    #[tracing::instrument(skip_all)]
    async fn rank(
        &self,
        request: Request<pb::RankRequest>,
    ) -> Result<Response<pb::RankResponse>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::RankRequest {
            tenant,
            prospect_id,
            candidates,
            top_k,
        } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(&grant, tenant.as_ref(), "ScoringService/Rank", Role::Read)?;
        let prospect = convert::prospect_id(&mut v, "prospect_id", prospect_id);
        let candidates = convert::candidates(&mut v, candidates, &self.0.limits);
        require!(v; tenant, prospect, candidates);
        let ranked = self
            .0
            .engine
            .rank(&tenant, &prospect, candidates, top_k as usize)
            .await?;
        Ok(Response::new(pb::RankResponse {
            results: ranked.into_iter().map(convert::scored_to_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn find_audience(
        &self,
        request: Request<pb::FindAudienceRequest>,
    ) -> Result<Response<pb::FindAudienceResponse>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::FindAudienceRequest {
            tenant,
            candidate,
            limit,
        } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(
            &grant,
            tenant.as_ref(),
            "ScoringService/FindAudience",
            Role::Read,
        )?;
        let candidate = convert::candidate(
            &mut v,
            "candidate",
            candidate,
            "draft".into(),
            &self.0.limits,
        );
        let limit = convert::audience_limit(&mut v, limit, &self.0.limits);
        require!(v; tenant, candidate, limit);
        let members = self
            .0
            .engine
            .find_audience(&tenant, candidate, limit)
            .await?;
        Ok(Response::new(pb::FindAudienceResponse {
            members: members
                .into_iter()
                .map(|(prospect, scored)| pb::AudienceMember {
                    prospect_id: prospect.to_string(),
                    result: Some(convert::scored_to_pb(scored)),
                })
                .collect(),
        }))
    }
}
