//! GateService: Check before every send, engagements, history and per-tenant policy.

use tonic::{Request, Response, Status};

use crate::auth::Role;

use super::convert;
use super::error::Violations;
use super::pb::{self, gate_service_server::GateService};
use super::{Handlers, require};
use crate::domain::EngagementRecord;
use crate::engine::gate::{CheckInput, RecordSendInput};
use crate::engine::now_millis;

/// The GateService implementation.
pub struct GateApi(pub Handlers);

#[tonic::async_trait]
impl GateService for GateApi {
    #[tracing::instrument(skip_all)]
    async fn check(
        &self,
        request: Request<pb::CheckRequest>,
    ) -> Result<Response<pb::GateDecision>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let deadline = super::deadline::caller_deadline(request.metadata());
        let pb::CheckRequest {
            tenant,
            prospect_id,
            candidate,
            send_id,
            channel,
            planned_at,
            dry_run,
        } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(
            &grant,
            tenant.as_ref(),
            "GateService/Check",
            if dry_run { Role::Read } else { Role::Write },
        )?;
        let prospect = convert::prospect_id(&mut v, "prospect_id", prospect_id);
        let candidate = convert::candidate(
            &mut v,
            "candidate",
            candidate,
            "draft".into(),
            &self.0.limits,
        );
        let send_id = convert::send_id(&mut v, "send_id", send_id);
        let channel = convert::channel(&mut v, channel);
        let planned_at =
            convert::optional_event_millis(&mut v, "planned_at", planned_at, now_millis());
        require!(v; tenant, prospect, candidate, send_id, channel, planned_at);
        let input = CheckInput {
            send_id,
            candidate,
            channel,
            planned_at,
            dry_run,
        };
        let outcome = self
            .0
            .engine
            .check(&tenant, &prospect, input, deadline)
            .await?;
        Ok(Response::new(convert::gate_decision_to_pb(outcome)))
    }

    #[tracing::instrument(skip_all)]
    async fn record_engagement(
        &self,
        request: Request<pb::EngagementRequest>,
    ) -> Result<Response<pb::EngagementResponse>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::EngagementRequest {
            tenant,
            prospect_id,
            send_id,
            kind,
            at,
            text,
        } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(
            &grant,
            tenant.as_ref(),
            "GateService/RecordEngagement",
            Role::Read,
        )?;
        let prospect = convert::prospect_id(&mut v, "prospect_id", prospect_id);
        let send_id = convert::send_id(&mut v, "send_id", send_id);
        let kind = convert::engagement_kind(&mut v, kind);
        let at = convert::optional_event_millis(&mut v, "at", at, now_millis());
        let text = convert::reply_text(&mut v, text, &self.0.limits);
        require!(v; tenant, prospect, send_id, kind, at, text);
        let engagement = EngagementRecord {
            send_id,
            kind,
            at: at.unwrap_or_else(now_millis),
        };
        let ids = self
            .0
            .engine
            .record_engagement(&tenant, &prospect, engagement, text)
            .await?;
        Ok(Response::new(pb::EngagementResponse {
            signal_ids: ids.into_iter().map(|i| i.to_string()).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn history(
        &self,
        request: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::HistoryRequest {
            tenant,
            prospect_id,
        } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(&grant, tenant.as_ref(), "GateService/History", Role::Read)?;
        let prospect = convert::prospect_id(&mut v, "prospect_id", prospect_id);
        require!(v; tenant, prospect);
        let events = self.0.engine.history(&tenant, &prospect).await?;
        Ok(Response::new(pb::HistoryResponse {
            events: events
                .into_iter()
                .map(convert::history_event_to_pb)
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn record_send(
        &self,
        request: Request<pb::RecordSendRequest>,
    ) -> Result<Response<pb::SendRecord>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::RecordSendRequest {
            tenant,
            prospect_id,
            send_id,
            candidate,
            decision_id,
            channel,
            sent_at,
        } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(
            &grant,
            tenant.as_ref(),
            "GateService/RecordSend",
            Role::Read,
        )?;
        let prospect = convert::prospect_id(&mut v, "prospect_id", prospect_id);
        let send_id = convert::send_id(&mut v, "send_id", send_id);
        // Without a decision to follow, the candidate says what went out.
        let candidate = match (candidate, decision_id.is_empty()) {
            (None, false) => Some(None),
            (raw, _) => {
                convert::candidate(&mut v, "candidate", raw, "draft".into(), &self.0.limits)
                    .map(Some)
            }
        };
        let decision_id = convert::decision_id(&mut v, decision_id);
        let channel = convert::channel(&mut v, channel);
        let now = now_millis();
        let sent_at = convert::optional_event_millis(&mut v, "sent_at", sent_at, now);
        require!(v; tenant, prospect, send_id, candidate, decision_id, channel, sent_at);
        let input = RecordSendInput {
            send_id,
            candidate,
            decision_id,
            channel,
            sent_at: sent_at.unwrap_or(now),
        };
        let send = self.0.engine.record_send(&tenant, &prospect, input).await?;
        Ok(Response::new(convert::send_record_to_pb(send)))
    }

    #[tracing::instrument(skip_all)]
    async fn lift_suppression(
        &self,
        request: Request<pb::LiftSuppressionRequest>,
    ) -> Result<Response<pb::LiftSuppressionResponse>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::LiftSuppressionRequest {
            tenant,
            prospect_id,
        } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(
            &grant,
            tenant.as_ref(),
            "GateService/LiftSuppression",
            Role::Read,
        )?;
        let prospect = convert::prospect_id(&mut v, "prospect_id", prospect_id);
        require!(v; tenant, prospect);
        let lifted = self.0.engine.lift_suppression(&tenant, &prospect).await?;
        Ok(Response::new(pb::LiftSuppressionResponse { lifted }))
    }

    #[tracing::instrument(skip_all)]
    async fn set_policy(
        &self,
        request: Request<pb::SetPolicyRequest>,
    ) -> Result<Response<pb::Policy>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::SetPolicyRequest { tenant, policy } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(&grant, tenant.as_ref(), "GateService/SetPolicy", Role::Read)?;
        let engine = &self.0.engine;
        let bounds = convert::PolicyBounds {
            allow_fail_send: engine.allows_fail_send(),
            retention_seconds: engine.retention().map(|r| r.as_secs()),
        };
        let policy = convert::policy(&mut v, policy, engine.default_gate_policy(), bounds);
        require!(v; tenant, policy);
        let stored = self.0.engine.set_gate_policy(&tenant, policy).await?;
        Ok(Response::new(convert::policy_to_pb(&stored)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::Policy>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::GetPolicyRequest { tenant } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(&grant, tenant.as_ref(), "GateService/GetPolicy", Role::Read)?;
        require!(v; tenant);
        let policy = self.0.engine.gate_policy(&tenant).await?;
        Ok(Response::new(convert::policy_to_pb(&policy)))
    }
}
