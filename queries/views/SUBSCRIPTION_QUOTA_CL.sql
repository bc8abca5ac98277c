-- Log Analytics compatibility table SUBSCRIPTION_QUOTA_CL (the FinOps
-- samples' budget list): the quota file given with --quota.
SELECT subscription_id AS "SubscriptionId", cost_quota AS "CostQuota" FROM quotas
