package storetest

// auditCases: the audit log.
var auditCases = []Case{}

// feedCases: the change feed, for backends shared between processes.
var feedCases = []Case{}
