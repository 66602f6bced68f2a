package storetest

// sessionCases: refresh sessions and the deny list.
var sessionCases = []Case{}
