//! ProspectService: prospects and their signals.

use tonic::{Request, Response, Status};

use crate::auth::Role;

use super::convert;
use super::error::Violations;
use super::pb::{self, prospect_service_server::ProspectService};
use super::{Handlers, require};
use crate::engine::now_millis;

/// The ProspectService implementation.
pub struct ProspectApi(pub Handlers);

#[tonic::async_trait]
impl ProspectService for ProspectApi {
    #[tracing::instrument(skip_all)]
    async fn upsert_prospect(
        &self,
        request: Request<pb::UpsertProspectRequest>,
    ) -> Result<Response<pb::Prospect>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::UpsertProspectRequest { tenant, prospect } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(
            &grant,
            tenant.as_ref(),
            "ProspectService/UpsertProspect",
            Role::Read,
        )?;
        let prospect = convert::prospect(&mut v, prospect);
        require!(v; tenant, prospect);
        let stored = self.0.engine.upsert_prospect(&tenant, prospect).await?;
        Ok(Response::new(convert::prospect_to_pb(stored)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_prospect(
        &self,
        request: Request<pb::GetProspectRequest>,
    ) -> Result<Response<pb::Prospect>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::GetProspectRequest { tenant, id } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(
            &grant,
            tenant.as_ref(),
            "ProspectService/GetProspect",
            Role::Read,
        )?;
        let id = convert::prospect_id(&mut v, "id", id);
        require!(v; tenant, id);
        let stored = self.0.engine.get_prospect(&tenant, &id).await?;
        Ok(Response::new(convert::prospect_to_pb(stored)))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_prospect(
        &self,
        request: Request<pb::DeleteProspectRequest>,
    ) -> Result<Response<pb::DeleteProspectResponse>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::DeleteProspectRequest { tenant, id } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(
            &grant,
            tenant.as_ref(),
            "ProspectService/DeleteProspect",
            Role::Read,
        )?;
        let id = convert::prospect_id(&mut v, "id", id);
        require!(v; tenant, id);
        let deleted = self.0.engine.delete_prospect(&tenant, &id).await?;
        Ok(Response::new(pb::DeleteProspectResponse {
            deleted: deleted.is_some(),
            signals_deleted: deleted.unwrap_or(0),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn add_signals(
        &self,
        request: Request<pb::AddSignalsRequest>,
    ) -> Result<Response<pb::AddSignalsResponse>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::AddSignalsRequest {
            tenant,
            prospect_id,
            signals,
        } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(
            &grant,
            tenant.as_ref(),
            "ProspectService/AddSignals",
            Role::Read,
        )?;
        let prospect = convert::prospect_id(&mut v, "prospect_id", prospect_id);
        let signals = convert::signals(&mut v, signals, &self.0.limits, now_millis());
        require!(v; tenant, prospect, signals);
        let written = self
            .0
            .engine
            .add_signals(&tenant, &prospect, signals)
            .await?;
        Ok(Response::new(pb::AddSignalsResponse {
            added: written.added,
            replaced: written.replaced,
            signal_count: written.total,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_signals(
        &self,
        request: Request<pb::DeleteSignalsRequest>,
    ) -> Result<Response<pb::DeleteSignalsResponse>, Status> {
        let _permit = self.0.engine.admit()?;
        let grant = crate::auth::grant_of(&request);
        let pb::DeleteSignalsRequest {
            tenant,
            prospect_id,
            ids,
        } = request.into_inner();
        let mut v = Violations::default();
        let tenant = convert::tenant(&mut v, tenant);
        crate::auth::permit(
            &grant,
            tenant.as_ref(),
            "ProspectService/DeleteSignals",
            Role::Read,
        )?;
        let prospect = convert::prospect_id(&mut v, "prospect_id", prospect_id);
        let ids = convert::signal_ids(&mut v, ids, &self.0.limits);
        require!(v; tenant, prospect, ids);
        let (deleted, remaining) = self
            .0
            .engine
            .delete_signals(&tenant, &prospect, &ids)
            .await?;
        Ok(Response::new(pb::DeleteSignalsResponse {
            deleted,
            signal_count: remaining,
        }))
    }
}
