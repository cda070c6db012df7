"""Magic links (`tokens`: issued, looked up, used up; `link_secrets`: the token and code
themselves; `exposed`: burning those seen where they should not be), the audit trail and
rate limits. Imports storage and models.
"""
