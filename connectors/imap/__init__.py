"""IMAP mail as a source: any IMAP server (Dovecot, Fastmail, Zoho, Proton Bridge, Exchange on-premises)."""
